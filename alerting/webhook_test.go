package alerting

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/meridian-obs/meridian/internal/config"
)

func TestWebhookRejectsBadInput(t *testing.T) {
	cfg := DefaultConfig()
	cfg.WebhookToken = config.Secret{Value: "Zq9xSecret"}
	a, err := New(cfg, Deps{Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	var got []Alert
	a.Subscribe(func(al Alert) { got = append(got, al) })
	good := `{"version":"4","status":"firing","receiver":"r","alerts":[{"status":"firing","labels":{"alertname":"X","region":"eu"},"annotations":{},"startsAt":"2026-11-20T10:00:00Z","endsAt":"0001-01-01T00:00:00Z","fingerprint":"abc"}]}`
	cases := []struct {
		name, auth, body, reason string
		code                     int
	}{
		{"no token", "", good, "unauthorized", 401},
		{"wrong token", "Bearer nope", good, "unauthorized", 401},
		{"not JSON", "Bearer Zq9xSecret", `{"version":`, "invalid", 400},
		{"version 3", "Bearer Zq9xSecret", strings.Replace(good, `"4"`, `"3"`, 1), "invalid", 400},
		{"bad status", "Bearer Zq9xSecret", strings.Replace(good, `"status":"firing","labels"`, `"status":"burning","labels"`, 1), "invalid", 400},
		{"ok", "Bearer Zq9xSecret", good, "", 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var before float64
			if c.reason != "" {
				before = testutil.ToFloat64(a.webhookErrors.WithLabelValues(c.reason))
			}
			req := httptest.NewRequest("POST", "/api/v1/alertmanager/webhook", strings.NewReader(c.body))
			if c.auth != "" {
				req.Header.Set("Authorization", c.auth)
			}
			w := httptest.NewRecorder()
			a.WebhookHandler().ServeHTTP(w, req)
			if w.Code != c.code {
				t.Fatalf("status %d, want %d: %s", w.Code, c.code, w.Body)
			}
			if strings.Contains(w.Body.String(), "Zq9xSecret") && c.code != 200 {
				t.Errorf("response leaks the token: %s", w.Body)
			}
			if c.reason != "" {
				if d := testutil.ToFloat64(a.webhookErrors.WithLabelValues(c.reason)) - before; d != 1 {
					t.Errorf("counter %s moved by %v", c.reason, d)
				}
			}
		})
	}
	// Without Start, alerts wait in the queue: the accepted payload is listed.
	al := a.Alerts()
	if len(al) != 1 || al[0].Labels["region"] != "eu" || al[0].Fingerprint != "abc" || al[0].Source != "alertmanager" {
		t.Errorf("alerts %+v", al)
	}
	_ = http.MethodPost
}

func TestWebhookWithoutTokenRefusesAll(t *testing.T) {
	a, _ := New(DefaultConfig(), Deps{Registry: prometheus.NewRegistry()})
	req := httptest.NewRequest("POST", "/", strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Bearer ")
	w := httptest.NewRecorder()
	a.WebhookHandler().ServeHTTP(w, req)
	if w.Code != 401 {
		t.Fatalf("status %d", w.Code)
	}
}
