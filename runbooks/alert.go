package runbooks

import (
	"context"
	"time"
)

// Alert is what starts (and, when it resolves, restores) a runbook. Its
// fields mirror alerting.Alert so that an adapter is a plain conversion; the
// Alertmanager webhook receiver fills the same fields.
type Alert struct {
	Labels      map[string]string
	Annotations map[string]string
	Status      string // "firing" or "resolved"
	StartsAt    time.Time
	EndsAt      time.Time
	Fingerprint string
}

// Alert statuses.
const (
	StatusFiring   = "firing"
	StatusResolved = "resolved"
)

// StatusSource answers whether an SLO's group (a region) is burning its error
// budget now. The SLO evaluator implements it (through a small adapter).
//
// GroupStatus returns known=false when the evaluator has no data for the
// group; runbooks treat an unknown group as not healthy.
type StatusSource interface {
	GroupStatus(ctx context.Context, slo, group string) (burning bool, known bool, err error)
	Groups(slo string) []string
}

// EscalateFunc receives the alerts runbooks raise of their own: a failed
// verification, a failed step, an expired approval.
type EscalateFunc func(Alert)
