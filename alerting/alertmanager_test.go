package alerting

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meridian-obs/meridian/internal/config"
	"github.com/meridian-obs/meridian/internal/testutil/chtest"
	"github.com/meridian-obs/meridian/slo"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startAlertmanager runs Debian's prometheus-alertmanager on loopback with
// a webhook receiver pointing at hook, and an inhibition of tickets by
// pages of the same SLO and region.
func startAlertmanager(t *testing.T, hook, token string) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus-alertmanager")
	if err != nil {
		chtest.Unavailable(t, "prometheus-alertmanager not installed (apt-get install prometheus-alertmanager)")
	}
	dir := t.TempDir()
	cfg := fmt.Sprintf(`route:
  receiver: meridian
  group_by: [alertname, slo, region, severity]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: meridian
    webhook_configs:
      - url: %q
        send_resolved: true
        http_config:
          authorization:
            credentials: %q
  - name: "null"
inhibit_rules:
  - source_matchers: [severity="page"]
    target_matchers: [severity="ticket"]
    equal: [alertname, slo, region]
`, hook, token)
	f := filepath.Join(dir, "am.yml")
	if err := os.WriteFile(f, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(bin, "--config.file="+f, "--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--cluster.listen-address=")
	var logBuf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logBuf, &logBuf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("alertmanager log:\n%s", logBuf.String())
		}
	})
	url := "http://" + addr
	for i := 0; i < 100; i++ {
		if r, err := http.Get(url + "/-/ready"); err == nil {
			r.Body.Close()
			if r.StatusCode == 200 {
				return url
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("alertmanager did not become ready:\n%s", logBuf.String())
	return ""
}

type amAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	EndsAt      time.Time         `json:"endsAt"`
	Fingerprint string            `json:"fingerprint"`
	Status      struct {
		State       string   `json:"state"`
		InhibitedBy []string `json:"inhibitedBy"`
	} `json:"status"`
}

func amAlerts(t *testing.T, url string) []amAlert {
	t.Helper()
	r, err := http.Get(url + "/api/v2/alerts")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var out []amAlert
	if err := json.NewDecoder(r.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

func f64(v float64) *float64 { return &v }

// status builds an SLO status whose conditions fire as told.
func status(page, ticket bool, stale bool) slo.Status {
	cond := func(sev, long, short string, factor float64, firing bool) slo.Condition {
		burn := 1.0
		if firing {
			burn = 1000
		}
		return slo.Condition{Name: sev + "-" + long + "-" + short, Severity: sev, LongWindow: long, ShortWindow: short,
			Factor: factor, LongBurn: f64(burn), ShortBurn: f64(burn), State: map[bool]string{true: slo.CondFiring, false: slo.CondOK}[firing],
			Firing: firing, Since: time.Now().Add(-time.Minute).Truncate(time.Second)}
	}
	return slo.Status{SLO: "edge", Group: "eu-west", GroupBy: "target_region", GroupLabel: "region", Objective: 0.999,
		Window: "30d", HasData: true, SLI: f64(0.99), ErrorBudgetRemaining: f64(-9), Stale: stale,
		Spec:       &slo.Spec{Name: "edge", Labels: map[string]string{"team": "net"}, Alerting: slo.AlertPolicy{RunbookURL: "https://runbooks.example/{slo}"}},
		Conditions: []slo.Condition{cond("page", "1h", "5m", 14.4, page), cond("ticket", "3d", "6h", 1, ticket)}}
}

func TestAlertmanagerDeliveryInhibitionWebhookAndResolve(t *testing.T) {
	const token = "s3cret-token"
	cfg := DefaultConfig()
	cfg.ResendInterval = time.Second
	cfg.WebhookToken = config.Secret{Value: token}
	// The webhook receiver first (Alertmanager needs its URL).
	var hookAlerting *Alerting
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hookAlerting.WebhookHandler().ServeHTTP(w, r)
	}))
	defer hook.Close()
	amURL := startAlertmanager(t, hook.URL+"/api/v1/alertmanager/webhook", token)
	cfg.Alertmanagers = []string{amURL}
	a, err := New(cfg, Deps{Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	hookAlerting = a
	var mu sync.Mutex
	var got []Alert
	a.Subscribe(func(al Alert) { mu.Lock(); got = append(got, al); mu.Unlock() })
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer a.Stop(context.Background())

	a.ObserveSLO(time.Now(), []slo.Status{status(true, true, false)})
	var page, ticket *amAlert
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) && (page == nil || ticket == nil || ticket.Status.State != "suppressed") {
		page, ticket = nil, nil
		for _, al := range amAlerts(t, amURL) {
			al := al
			switch al.Labels["severity"] {
			case "page":
				page = &al
			case "ticket":
				ticket = &al
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	if page == nil || ticket == nil {
		t.Fatalf("alerts not in Alertmanager: page=%v ticket=%v", page, ticket)
	}
	want := map[string]string{"alertname": AlertName, "slo": "edge", "region": "eu-west", "severity": "page",
		"long_window": "1h", "short_window": "5m", "team": "net"}
	for k, v := range want {
		if page.Labels[k] != v {
			t.Errorf("page label %s=%q, want %q (all: %v)", k, page.Labels[k], v, page.Labels)
		}
	}
	if page.Annotations["runbook_url"] != "https://runbooks.example/edge" || page.Annotations["summary"] == "" || page.Annotations["description"] == "" {
		t.Errorf("annotations: %v", page.Annotations)
	}
	if ticket.Status.State != "suppressed" || len(ticket.Status.InhibitedBy) == 0 {
		t.Errorf("ticket not inhibited by the page: %+v", ticket.Status)
	}
	if page.Fingerprint != Fingerprint(page.Labels) {
		t.Errorf("fingerprint %s, Alertmanager's %s", Fingerprint(page.Labels), page.Fingerprint)
	}
	// Alertmanager routes the page back to the webhook receiver.
	waitFor(t, 20*time.Second, "page received through the webhook", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, al := range got {
			if al.Source == "alertmanager" && al.Firing() && al.Labels["severity"] == "page" && al.Labels["region"] == "eu-west" {
				return true
			}
		}
		return false
	})
	// A stale status never resolves.
	a.ObserveSLO(time.Now(), []slo.Status{status(false, false, true)})
	for _, al := range a.Alerts() {
		if al.Source == "meridian" && !al.Firing() {
			t.Fatalf("a stale status resolved %v", al.Labels)
		}
	}
	// The burn stops: both alerts resolve, with an end time, in
	// Alertmanager and through the webhook.
	a.ObserveSLO(time.Now(), []slo.Status{status(false, false, false)})
	waitFor(t, 20*time.Second, "alerts resolved in Alertmanager", func() bool {
		for _, al := range amAlerts(t, amURL) {
			if al.Labels["slo"] == "edge" && al.EndsAt.After(time.Now()) {
				return false
			}
		}
		return true
	})
	waitFor(t, 20*time.Second, "resolution received through the webhook", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, al := range got {
			if al.Source == "alertmanager" && !al.Firing() && al.Labels["severity"] == "page" && !al.EndsAt.IsZero() {
				return true
			}
		}
		return false
	})
	mu.Lock()
	var mine []string
	for _, al := range got {
		if al.Source == "meridian" {
			mine = append(mine, al.Labels["severity"]+":"+al.Status)
		}
	}
	mu.Unlock()
	if fmt.Sprint(mine) != "[page:firing ticket:firing page:resolved ticket:resolved]" {
		t.Errorf("subscriber saw %v", mine)
	}
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if ok() {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}
