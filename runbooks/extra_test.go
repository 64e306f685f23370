package runbooks

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/meridian-obs/meridian/internal/syncbuf"
)

func TestCancelRunningRunUndoes(t *testing.T) {
	rc := newReceiver(t)
	yaml := `
runbooks:
  - name: two
    trigger: {match: 'slo=edge-latency'}
    steps:
      - name: first
        webhook: {endpoint: ops, event: first}
      - name: second
        webhook: {endpoint: ops, event: second}
`
	var logs syncbuf.Buffer
	f := newFixture(t, webhookConfig(t, rc), newStatus([]string{"eu"}), yaml, func(d *Deps) {
		d.Log = slog.New(slog.NewTextHandler(&logs, nil))
	})
	hold := make(chan struct{})
	f.setOnStep(func(_ *Run, step int) {
		if step == 0 {
			rc.mu.Lock()
			rc.hold = hold // the second step's request hangs
			rc.mu.Unlock()
		}
	})
	id := f.fire(t, "two", "fp1", labels("eu"))
	for {
		r, _ := f.e.GetRun(id)
		if r.Steps != nil && r.Steps[0].State == "done" {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	must(t, f.e.Cancel(id, "dave"))
	rc.mu.Lock()
	rc.hold = nil
	rc.mu.Unlock()
	close(hold)
	run := f.wait(t, id, StateRolledBack)
	if !hasAudit(run, "cancel", "requested", "") || !hasAudit(run, "undo", "ok", "rollback: first") {
		t.Errorf("audit:%s", auditText(run))
	}
	for i := 0; i < 200 && len(f.escalations()) == 0; i++ { // raised just after the state change
		time.Sleep(5 * time.Millisecond)
	}
	if len(f.escalations()) != 1 {
		t.Errorf("escalations %d, want 1", len(f.escalations()))
	}
	var phases []string
	for _, ev := range rc.got() {
		phases = append(phases, ev.Type+"/"+ev.Phase)
	}
	// The cancelled second request may or may not have reached the
	// receiver's handler (it was held there); the first step must have been
	// applied, then undone.
	undo := -1
	for i, p := range phases {
		if p == "first/undo" {
			undo = i
		}
	}
	if len(phases) < 2 || phases[0] != "first/apply" || undo < 1 {
		t.Errorf("events %v", phases)
	}
	if strings.Contains(logs.String(), rc.secret[6:]) {
		t.Error("webhook secret in the log")
	}
	if !strings.Contains(logs.String(), "runbook decision") {
		t.Error("decisions are not logged")
	}
}

func TestDNSReplaceCNAMEAndAAAA(t *testing.T) {
	b := startBIND(t)
	yaml := `
runbooks:
  - name: swap
    trigger: {match: 'slo=edge-latency'}
    restore_on_resolve: true
    steps:
      - name: cname
        dns: {server: primary, op: replace, name: www, type: CNAME, values: ['edge-{{ .Labels.target }}'], ttl: 60}
      - name: aaaa
        dns: {server: primary, op: replace, name: 'v6-{{ .Labels.region }}', type: AAAA, values: ['::1', '::2']}
`
	var logs syncbuf.Buffer
	f := newFixture(t, dnsConfig(b), newStatus([]string{"eu"}), yaml, func(d *Deps) {
		d.Log = slog.New(slog.NewTextHandler(&logs, nil))
	})
	l := labels("eu")
	l["target"] = "us"
	id := f.fire(t, "swap", "fp1", l)
	f.wait(t, id, StateSucceeded)
	if diff := cmp.Diff([]string{"60 edge-us.example.test."}, b.dig(t, "www.example.test", "CNAME")); diff != "" {
		t.Errorf("CNAME (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"300 ::1", "300 ::2"}, b.dig(t, "v6-eu.example.test", "AAAA")); diff != "" {
		t.Errorf("AAAA (-want +got):\n%s", diff)
	}
	f.e.HandleAlert(Alert{Labels: l, Status: StatusResolved, Fingerprint: "fp1"})
	f.wait(t, id, StateRestored)
	if diff := cmp.Diff([]string{"300 edge-eu.example.test."}, b.dig(t, "www.example.test", "CNAME")); diff != "" {
		t.Errorf("CNAME restored (-want +got):\n%s", diff)
	}
	if got := b.dig(t, "v6-eu.example.test", "AAAA"); len(got) != 0 {
		t.Errorf("AAAA not removed on restore: %v", got)
	}
	if strings.Contains(logs.String(), b.secret) {
		t.Error("TSIG secret in the log")
	}
	// A value of the wrong family is refused before any update.
	l2 := labels("eu")
	l2["target"] = "us"
	l2["region"] = "ap"
	yamlBad := strings.Replace(yaml, "values: ['::1', '::2']", "values: ['127.0.0.1']", 1)
	rbs, err := Parse("bad.yaml", []byte(yamlBad), &f.e.cfg)
	must(t, err)
	f.e.SetRunbooks(rbs)
	run := f.wait(t, f.fire(t, "swap", "fp2", l2), StateBlocked)
	if !strings.Contains(run.Reason, `value "127.0.0.1" is not an IPv6 address`) {
		t.Errorf("reason %q", run.Reason)
	}
}

func TestResolvedWhileRunningRestoresAtTheEnd(t *testing.T) {
	rc := newReceiver(t)
	f := newFixture(t, webhookConfig(t, rc), newStatus([]string{"eu", "us"}, "eu"), hookYAML("restore_on_resolve: true"))
	hold := make(chan struct{})
	rc.mu.Lock()
	rc.hold = hold
	rc.mu.Unlock()
	id := f.fire(t, "edge-notify", "fp1", labels("eu"))
	f.wait(t, id, StateRunning)
	f.e.HandleAlert(Alert{Labels: labels("eu"), Status: StatusResolved, Fingerprint: "fp1"})
	rc.mu.Lock()
	rc.hold = nil
	rc.mu.Unlock()
	close(hold)
	run := f.wait(t, id, StateRestored)
	if evs := rc.got(); len(evs) != 2 || evs[1].Phase != "undo" {
		t.Errorf("events %+v%s", evs, auditText(run))
	}
}

func TestKeepRunsPrunesFinishedRuns(t *testing.T) {
	rc := newReceiver(t)
	cfg := webhookConfig(t, rc)
	cfg.KeepRuns = 3
	f := newFixture(t, cfg, newStatus([]string{"eu", "us"}, "eu"), hookYAML("dry_run: true"))
	for i := 0; i < 6; i++ {
		f.wait(t, f.fire(t, "edge-notify", "fp"+string(rune('a'+i)), labels("eu")), StateDryRun)
	}
	if n := len(f.e.Runs()); n != 3 {
		t.Errorf("%d runs kept, want 3", n)
	}
	f.e.mu.Lock()
	n := len(f.e.byKey)
	f.e.mu.Unlock()
	if n > 4 {
		t.Errorf("idempotency keys not pruned: %d", n)
	}
}
