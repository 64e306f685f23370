package gameday

import (
	"context"
	"sort"

	"github.com/meridian-obs/meridian/slo"
)

// SLOStatus adapts the SLO engine to runbooks.StatusSource: a group is
// burning when one of its page conditions fires; unknown without data.
type SLOStatus struct{ Engine *slo.Engine }

// GroupStatus implements runbooks.StatusSource.
func (s SLOStatus) GroupStatus(_ context.Context, name, group string) (bool, bool, error) {
	st, ok := s.Engine.Status(name, group)
	if !ok || !st.HasData {
		return false, false, nil
	}
	for _, c := range st.Conditions {
		if c.Severity == "page" && c.Firing {
			return true, true, nil
		}
	}
	return false, true, nil
}

// Groups implements runbooks.StatusSource.
func (s SLOStatus) Groups(name string) []string {
	var gs []string
	for _, st := range s.Engine.Statuses() {
		if st.SLO == name {
			gs = append(gs, st.Group)
		}
	}
	sort.Strings(gs)
	return gs
}
