package alerting

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/meridian-obs/meridian/internal/httpx"
)

// WebhookMessage is Alertmanager's webhook payload, version 4.
type WebhookMessage struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []WebhookAlert    `json:"alerts"`
}

// WebhookAlert is one alert of a webhook payload.
type WebhookAlert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// MaxWebhookBody bounds a webhook payload.
const MaxWebhookBody = 4 << 20

// ParseWebhook decodes and checks a version 4 payload. Alerts without
// labels or with an unknown status are errors that name the alert.
func ParseWebhook(body []byte) (WebhookMessage, error) {
	var m WebhookMessage
	dec := json.NewDecoder(strings.NewReader(string(body)))
	if err := dec.Decode(&m); err != nil {
		return m, fmt.Errorf("invalid JSON: %w", err)
	}
	if m.Version != "4" {
		return m, fmt.Errorf("unsupported payload version %q (expected \"4\")", m.Version)
	}
	for i, a := range m.Alerts {
		if a.Status != StatusFiring && a.Status != StatusResolved {
			return m, fmt.Errorf("alerts[%d].status: expected firing or resolved, got %q", i, a.Status)
		}
		if len(a.Labels) == 0 {
			return m, fmt.Errorf("alerts[%d].labels: expected at least one label", i)
		}
	}
	return m, nil
}

// WebhookHandler is POST /api/v1/alertmanager/webhook: Alertmanager's
// webhook receiver, authenticated by the bearer token webhook_token. Every
// alert of the payload is handed to the subscribers.
func (a *Alerting) WebhookHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			httpx.Error(w, http.StatusMethodNotAllowed, "method_not_allowed", "use POST")
			return
		}
		if !a.authorized(r) {
			a.webhookErrors.WithLabelValues("unauthorized").Inc()
			w.Header().Set("WWW-Authenticate", `Bearer realm="meridian"`)
			httpx.Error(w, http.StatusUnauthorized, "unauthorized", "a valid bearer token is required")
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxWebhookBody))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				a.webhookErrors.WithLabelValues("too_large").Inc()
				httpx.Error(w, http.StatusRequestEntityTooLarge, "too_large", "body larger than %d bytes", MaxWebhookBody)
				return
			}
			a.webhookErrors.WithLabelValues("read").Inc()
			httpx.BadRequest(w, "cannot read body")
			return
		}
		m, err := ParseWebhook(body)
		if err != nil {
			a.webhookErrors.WithLabelValues("invalid").Inc()
			httpx.BadRequest(w, "invalid Alertmanager webhook payload: %v", err)
			return
		}
		batch := make([]Alert, 0, len(m.Alerts))
		a.mu.Lock()
		for _, wa := range m.Alerts {
			fp := wa.Fingerprint
			if fp == "" {
				fp = Fingerprint(wa.Labels)
			}
			al := Alert{Labels: wa.Labels, Annotations: wa.Annotations, Status: wa.Status, StartsAt: wa.StartsAt,
				Fingerprint: fp, Source: "alertmanager"}
			if al.Annotations == nil {
				al.Annotations = map[string]string{}
			}
			if wa.Status == StatusResolved {
				al.EndsAt = wa.EndsAt
			}
			a.received[fp] = al
			batch = append(batch, al)
		}
		now := a.now()
		for fp, r := range a.received {
			if !r.Firing() && now.Sub(r.EndsAt) > a.cfg.KeepResolved {
				delete(a.received, fp)
			}
		}
		a.mu.Unlock()
		a.publish(batch)
		httpx.JSON(w, http.StatusOK, map[string]any{"received": len(batch)})
	})
}

func (a *Alerting) authorized(r *http.Request) bool {
	if a.token == "" {
		return false
	}
	h := r.Header.Get("Authorization")
	const p = "Bearer "
	if len(h) <= len(p) || !strings.EqualFold(h[:len(p)], p) {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(h[len(p):]), []byte(a.token)) == 1
}

// AlertsHandler is GET /api/v1/alerts: {"alerts": [...]} as Alerts().
func (a *Alerting) AlertsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpx.JSON(w, http.StatusOK, map[string]any{"alerts": a.Alerts()})
	})
}
