package runbooks

import (
	"context"
	"crypto/hmac"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/meridian-obs/meridian/internal/config"
)

func sortStrings(s []string) { sort.Strings(s) }

func secretFile(p string) config.Secret { return config.Secret{File: p} }

// testStatus is a StatusSource the test changes as it goes.
type testStatus struct {
	mu      sync.Mutex
	groups  []string
	burning map[string]bool
}

func newStatus(groups []string, burning ...string) *testStatus {
	s := &testStatus{groups: groups, burning: map[string]bool{}}
	for _, b := range burning {
		s.burning[b] = true
	}
	return s
}

func (s *testStatus) GroupStatus(_ context.Context, _, group string) (bool, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range s.groups {
		if g == group {
			return s.burning[group], true, nil
		}
	}
	return false, false, nil
}

func (s *testStatus) Groups(string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.groups...)
}

type fixture struct {
	e   *Executor
	reg *prometheus.Registry
	mu  sync.Mutex
	esc []Alert
}

func (f *fixture) escalations() []Alert {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Alert(nil), f.esc...)
}

// newFixture builds and starts an executor with the runbooks of yaml.
func newFixture(t testing.TB, cfg Config, st StatusSource, yaml string, deps ...func(*Deps)) *fixture {
	t.Helper()
	f := &fixture{reg: prometheus.NewRegistry()}
	d := Deps{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Registry: f.reg, Status: st,
		Escalate: func(a Alert) { f.mu.Lock(); f.esc = append(f.esc, a); f.mu.Unlock() }}
	if testing.Verbose() {
		d.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	for _, fn := range deps {
		fn(&d)
	}
	if err := validateConfig(cfg); err != nil {
		t.Fatalf("config: %v", err)
	}
	e, err := New(cfg, d)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	rbs, err := Parse("test.yaml", []byte(yaml), &cfg)
	if err != nil {
		t.Fatalf("runbooks: %v", err)
	}
	e.SetRunbooks(rbs)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = e.Stop(ctx)
	})
	f.e = e
	return f
}

func validateConfig(cfg Config) error {
	r := config.NewReporter()
	cfg.Validate(r)
	return r.Err()
}

// fire sends a firing alert and returns the run it started for runbook.
func (f *fixture) fire(t testing.TB, runbook string, fp string, labels map[string]string) string {
	t.Helper()
	f.e.HandleAlert(Alert{Labels: labels, Status: StatusFiring, StartsAt: time.Now(), Fingerprint: fp})
	id, ok := f.e.RunForAlert(runbook, fp)
	if !ok {
		t.Fatalf("alert %s started no run of %s", fp, runbook)
	}
	return id
}

func (f *fixture) wait(t testing.TB, id string, states ...string) Run {
	t.Helper()
	r, err := f.e.WaitRun(waitCtx(t, 60*time.Second), id, states...)
	if err != nil {
		t.Fatalf("%v\naudit: %s", err, auditText(r))
	}
	return r
}

func auditText(r Run) string {
	var b strings.Builder
	for _, a := range r.Audit {
		b.WriteString("\n  " + a.Kind + " " + a.Decision + " " + a.Actor + ": " + a.Detail)
	}
	return b.String()
}

func hasAudit(r Run, kind, decision, contains string) bool {
	for _, a := range r.Audit {
		if a.Kind == kind && a.Decision == decision && strings.Contains(a.Detail, contains) {
			return true
		}
	}
	return false
}

func counter(t testing.TB, c prometheus.Collector) float64 { return testutil.ToFloat64(c) }

// receiver is a Standard Webhooks receiver: it verifies the signature and
// the timestamp, and rejects a replayed webhook-id.
type receiver struct {
	srv    *httptest.Server
	key    []byte
	secret string // whsec_…

	mu       sync.Mutex
	seen     map[string]bool
	events   []WebhookEvent
	raw      []*http.Request
	bodies   [][]byte
	rejected map[string]int
	failNext int           // answer 503 this many times
	hold     chan struct{} // when set, requests wait on it
}

func newReceiver(t testing.TB) *receiver {
	key := []byte("0123456789abcdef0123456789abcdef")
	rc := &receiver{key: key, secret: "whsec_" + base64.StdEncoding.EncodeToString(key), seen: map[string]bool{}, rejected: map[string]int{}}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	hold := rc.hold
	rc.mu.Unlock()
	if hold != nil {
		<-hold
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.failNext > 0 {
		rc.failNext--
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	id, ts, sig := r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp"), r.Header.Get("webhook-signature")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		rc.rejected["timestamp"]++
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	want := Sign(rc.key, id, sec, body)
	ok := false
	for _, s := range strings.Fields(sig) {
		if hmac.Equal([]byte(s), []byte(want)) {
			ok = true
		}
	}
	if !ok {
		rc.rejected["signature"]++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if rc.seen[id] {
		rc.rejected["replay"]++
		w.WriteHeader(http.StatusConflict)
		return
	}
	rc.seen[id] = true
	var ev WebhookEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		rc.rejected["json"]++
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	rc.events = append(rc.events, ev)
	rc.raw = append(rc.raw, r.Clone(context.Background()))
	rc.bodies = append(rc.bodies, body)
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) got() []WebhookEvent {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]WebhookEvent(nil), rc.events...)
}

func (rc *receiver) hostPort() string { return strings.TrimPrefix(rc.srv.URL, "http://") }

// webhookConfig returns a config with the receiver as endpoint "ops".
func webhookConfig(t testing.TB, rc *receiver) Config {
	cfg := DefaultConfig()
	cfg.DefaultCooldown = 0
	f := t.TempDir() + "/whsec"
	must(t, os.WriteFile(f, []byte(rc.secret), 0o600))
	cfg.Webhook = WebhookConfig{Allow: []string{rc.hostPort()}, Endpoints: map[string]WebhookEndpoint{
		"ops": {URL: rc.srv.URL + "/hook", Secret: secretFile(f), Timeout: 2 * time.Second, Attempts: 3, Backoff: 20 * time.Millisecond}}}
	return cfg
}

func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func (f *fixture) setOnStep(fn func(*Run, int)) {
	f.e.mu.Lock()
	f.e.onStep = fn
	f.e.mu.Unlock()
}
