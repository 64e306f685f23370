// Package adapt connects runbooks to the SLO engine and the alerting
// component (kept apart so that runbooks depends on neither).
package adapt

import (
	"context"

	"github.com/meridian-obs/meridian/alerting"
	"github.com/meridian-obs/meridian/runbooks"
	"github.com/meridian-obs/meridian/slo"
)

// FromAlerting converts an alert of the alerting component.
func FromAlerting(a alerting.Alert) runbooks.Alert {
	return runbooks.Alert{Labels: a.Labels, Annotations: a.Annotations, Status: a.Status, StartsAt: a.StartsAt,
		EndsAt: a.EndsAt, Fingerprint: a.Fingerprint}
}

// ToAlerting converts an escalation for the alerting component.
func ToAlerting(a runbooks.Alert) alerting.Alert {
	return alerting.Alert{Labels: a.Labels, Annotations: a.Annotations, Status: a.Status, StartsAt: a.StartsAt,
		EndsAt: a.EndsAt, Fingerprint: a.Fingerprint, Source: "meridian"}
}

// SLOStatus adapts the SLO engine: a group is known when its last
// evaluation has data and is not stale, and burning when any of its
// burn-rate alert conditions fires.
type SLOStatus struct{ Engine *slo.Engine }

// GroupStatus implements runbooks.StatusSource.
func (s SLOStatus) GroupStatus(_ context.Context, name, group string) (bool, bool, error) {
	st, ok := s.Engine.Status(name, group)
	if !ok || !st.HasData || st.Stale {
		return false, false, nil
	}
	for _, c := range st.Conditions {
		if c.Firing {
			return true, true, nil
		}
	}
	return false, true, nil
}

// Groups implements runbooks.StatusSource.
func (s SLOStatus) Groups(name string) []string {
	var out []string
	for _, st := range s.Engine.Statuses() {
		if st.SLO == name {
			out = append(out, st.Group)
		}
	}
	return out
}
