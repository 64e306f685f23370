package alerting

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// A runbook's escalation reaches the real Alertmanager with its labels, is
// listed by the alerts API, is not handed to subscribers, and resolves by
// itself after its time to live.
func TestRaiseReachesAlertmanagerAndExpires(t *testing.T) {
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer hook.Close()
	amURL := startAlertmanager(t, hook.URL, "unused-token")
	cfg := DefaultConfig()
	cfg.ResendInterval = 200 * time.Millisecond
	cfg.Alertmanagers = []string{amURL}
	a, err := New(cfg, Deps{Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	subscribed := 0
	a.Subscribe(func(Alert) { subscribed++ })
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer a.Stop(context.Background())

	esc := Alert{Labels: map[string]string{"alertname": "MeridianRunbookEscalation", "runbook": "region-failover",
		"region": "eu", "severity": "page"}, Annotations: map[string]string{"summary": "verification failed; undone"}}
	a.Raise(esc, 3*time.Second)

	var found *amAlert
	deadline := time.Now().Add(20 * time.Second)
	for found == nil && time.Now().Before(deadline) {
		for _, al := range amAlerts(t, amURL) {
			if al.Labels["alertname"] == "MeridianRunbookEscalation" && al.Status.State == "active" {
				al := al
				found = &al
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	if found == nil {
		t.Fatal("the escalation did not reach Alertmanager")
	}
	if found.Labels["runbook"] != "region-failover" || found.Labels["region"] != "eu" || found.Annotations["summary"] == "" {
		t.Errorf("labels %v annotations %v", found.Labels, found.Annotations)
	}
	listed := a.Alerts()
	if len(listed) != 1 || !listed[0].Firing() || listed[0].Labels["runbook"] != "region-failover" {
		t.Fatalf("alerts API: %+v", listed)
	}
	// After the TTL it resolves, in Meridian and in Alertmanager.
	deadline = time.Now().Add(20 * time.Second)
	for {
		resolved := len(a.Alerts()) == 1 && !a.Alerts()[0].Firing()
		active := false
		for _, al := range amAlerts(t, amURL) {
			if al.Labels["alertname"] == "MeridianRunbookEscalation" && al.Status.State == "active" {
				active = true
			}
		}
		if resolved && !active {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("escalation not resolved after its TTL (meridian resolved %v, alertmanager active %v)", resolved, active)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if subscribed != 0 {
		t.Errorf("an escalation was handed to %d subscribers", subscribed)
	}
}
