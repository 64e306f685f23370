// Package alerting turns SLO alert conditions into alerts: a state machine
// per condition, delivery to Alertmanager's v2 API through Prometheus's
// notifier, a receiver for Alertmanager webhooks, and a small subscription API
// through which other components (runbooks, the dashboard) receive alerts.
package alerting

import "time"

// Alert statuses.
const (
	StatusFiring   = "firing"
	StatusResolved = "resolved"
)

// Alert is one alert as subscribers see it, whether raised by Meridian's own
// SLO evaluation or received from Alertmanager's webhook.
//
// Labels of SLO alerts: alertname, slo, the group label (for example region),
// severity ("page" or "ticket"), long_window and short_window. Annotations:
// summary, description (with the figures), runbook_url, dashboard_url.
type Alert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	// Status is StatusFiring or StatusResolved.
	Status   string    `json:"status"`
	StartsAt time.Time `json:"starts_at"`
	// EndsAt is zero while firing (unknown end) and the resolution time once
	// resolved.
	EndsAt time.Time `json:"ends_at"`
	// Fingerprint identifies the alert by its labels: the same labels give the
	// same fingerprint (Alertmanager's own when received from a webhook).
	Fingerprint string `json:"fingerprint"`
	// Source is "meridian" for alerts raised by the SLO engine and
	// "alertmanager" for alerts received from the webhook.
	Source string `json:"source,omitempty"`
}

// Firing reports whether the alert is firing.
func (a Alert) Firing() bool { return a.Status == StatusFiring }

// Subscriber receives alerts. It is called synchronously from the component's
// goroutine: it must not block for long (hand work to a goroutine of your own).
type Subscriber func(Alert)
