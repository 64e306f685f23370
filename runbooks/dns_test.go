package runbooks

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const dnsRunbook = `
runbooks:
  - name: edge-failover
    trigger:
      match: 'slo=edge-latency, severity=page, region=~".+"'
    params:
      region: '{{ .Labels.region }}'
      peer: '{{ healthyPeer }}'
    traffic: {from: '{{ .Params.region }}', to: '{{ .Params.peer }}'}
    %s
    restore_on_resolve: true
    steps:
      - name: lower-ttl
        dns: {server: primary, op: set_ttl, name: 'edge-{{ .Params.region }}', type: A, ttl: 30}
      - name: failover
        dns: {server: primary, op: replace, name: 'edge-{{ .Params.region }}', type: A, copy_from: 'edge-{{ .Params.peer }}'}
`

func dnsConfig(b *bind) Config {
	cfg := DefaultConfig()
	cfg.DefaultCooldown = 0
	cfg.DNS.Servers = map[string]DNSServer{"primary": b.server()}
	return cfg
}

func TestDNSFailoverAndRestore(t *testing.T) {
	b := startBIND(t)
	before := b.dig(t, "edge-eu.example.test", "A")
	if diff := cmp.Diff([]string{"300 127.0.1.1", "300 127.0.1.2"}, before); diff != "" {
		t.Fatalf("zone fixture (-want +got):\n%s", diff)
	}
	f := newFixture(t, dnsConfig(b), newStatus([]string{"eu", "us", "ap"}, "eu", "ap"), strings.Replace(dnsRunbook, "%s", "", 1))
	var afterTTL []string
	f.setOnStep(func(r *Run, i int) {
		if i == 0 {
			afterTTL = b.dig(t, "edge-eu.example.test", "A")
		}
	})
	t0 := time.Now()
	id := f.fire(t, "edge-failover", "fp1", labels("eu"))
	run := f.wait(t, id, StateSucceeded)
	t.Logf("alert → run succeeded (2 RFC 2136 updates + reads against BIND): %s", time.Since(t0))
	if diff := cmp.Diff([]string{"30 127.0.1.1", "30 127.0.1.2"}, afterTTL); diff != "" {
		t.Errorf("after set_ttl, dig (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"30 127.0.2.1"}, b.dig(t, "edge-eu.example.test", "A")); diff != "" {
		t.Errorf("after failover to us, dig (-want +got):\n%s", diff)
	}
	if run.Params["peer"] != "us" {
		t.Errorf("peer %q, want us (ap is burning)", run.Params["peer"])
	}
	if !hasAudit(run, "action", "ok", "edge-eu.example.test. A: [30 127.0.1.1, 30 127.0.1.2] → [30 127.0.2.1]") {
		t.Errorf("failover outcome not audited:%s", auditText(run))
	}
	f.e.HandleAlert(Alert{Labels: labels("eu"), Status: StatusResolved, Fingerprint: "fp1"})
	run = f.wait(t, id, StateRestored)
	if diff := cmp.Diff(before, b.dig(t, "edge-eu.example.test", "A")); diff != "" {
		t.Errorf("after restore, dig (-want +got):\n%s%s", diff, auditText(run))
	}
	// The TSIG secret never shows in the audit.
	if strings.Contains(auditText(run), b.secret) {
		t.Error("TSIG secret in the audit log")
	}
}

func TestDNSDryRunChangesNothing(t *testing.T) {
	b := startBIND(t)
	f := newFixture(t, dnsConfig(b), newStatus([]string{"eu", "us"}, "eu"), strings.Replace(dnsRunbook, "%s", "dry_run: true", 1))
	run := f.wait(t, f.fire(t, "edge-failover", "fp1", labels("eu")), StateDryRun)
	if diff := cmp.Diff([]string{"300 127.0.1.1", "300 127.0.1.2"}, b.dig(t, "edge-eu.example.test", "A")); diff != "" {
		t.Errorf("dry run changed BIND (-want +got):\n%s", diff)
	}
	if !hasAudit(run, "action", "planned", "replace edge-eu.example.test. A with the A records of edge-us.example.test.") {
		t.Errorf("plan not recorded:%s", auditText(run))
	}
}

func TestDNSConcurrentChangeNotClobbered(t *testing.T) {
	need(t, "nsupdate")
	b := startBIND(t)
	f := newFixture(t, dnsConfig(b), newStatus([]string{"eu", "us"}, "eu"), strings.Replace(dnsRunbook, "%s", "", 1))
	id := f.fire(t, "edge-failover", "fp1", labels("eu"))
	f.wait(t, id, StateSucceeded)
	// An operator changes the record by hand meanwhile.
	script := fmt.Sprintf("server 127.0.0.1 %d\nzone example.test\nupdate delete edge-eu.example.test A\nupdate add edge-eu.example.test 60 A 127.0.9.9\nsend\n", b.port)
	cmd := exec.Command("nsupdate", "-k", filepath.Join(b.dir, "key.conf"))
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nsupdate: %v: %s", err, out)
	}
	f.e.HandleAlert(Alert{Labels: labels("eu"), Status: StatusResolved, Fingerprint: "fp1"})
	run := f.wait(t, id, StateRollbackFailed)
	if diff := cmp.Diff([]string{"60 127.0.9.9"}, b.dig(t, "edge-eu.example.test", "A")); diff != "" {
		t.Errorf("restore clobbered the operator's change (-want +got):\n%s", diff)
	}
	if !hasAudit(run, "undo", "failed", "prerequisite failed") {
		t.Errorf("conflict not audited:%s", auditText(run))
	}
	if len(f.escalations()) != 1 {
		t.Errorf("escalations %d, want 1", len(f.escalations()))
	}
}

func TestDNSLabelInjectionRefused(t *testing.T) {
	b := startBIND(t)
	// A runbook that trusts the label as a name (pattern relaxed): the zone
	// check still refuses a name outside the zone.
	yaml := `
runbooks:
  - name: ttl
    trigger: {match: 'slo="edge-latency"'}
    params: {host: '{{ .Labels.host }}'}
    param_patterns: {host: '.*'}
    steps:
      - dns: {server: primary, op: set_ttl, name: '{{ .Params.host }}', type: A, ttl: 5}
`
	f := newFixture(t, dnsConfig(b), newStatus([]string{"eu"}), yaml)
	for i, host := range []string{"ns.example.test.evil.org.", "evil.org.", "a b", "edge-eu.example.test.\nx"} {
		l := labels("eu")
		l["host"] = host
		run := f.wait(t, f.fire(t, "ttl", fmt.Sprint("fp", i), l), StateBlocked)
		if !strings.HasPrefix(run.Reason, "plan: step step1:") {
			t.Errorf("host %q: reason %q", host, run.Reason)
		}
	}
	if diff := cmp.Diff([]string{"300 127.0.0.1"}, b.dig(t, "ns.example.test", "A")); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	// With the default pattern a dotted label is refused before any name is built.
	yaml2 := strings.Replace(yaml, "param_patterns: {host: '.*'}", "", 1)
	f2 := newFixture(t, dnsConfig(b), newStatus([]string{"eu"}), yaml2)
	l := labels("eu")
	l["host"] = "edge-eu.example.test."
	run := f2.wait(t, f2.fire(t, "ttl", "fpx", l), StateBlocked)
	if !strings.Contains(run.Reason, "does not match") {
		t.Errorf("reason %q", run.Reason)
	}
}

func TestDNSServerDownUndoesEarlierSteps(t *testing.T) {
	b := startBIND(t)
	rc := newReceiver(t)
	cfg := dnsConfig(b)
	wc := webhookConfig(t, rc)
	cfg.Webhook = wc.Webhook
	dead := freePort(t, "127.0.0.1")
	bad := b.server()
	bad.Addr = fmt.Sprintf("127.0.0.1:%d", dead)
	bad.Timeout = 500 * time.Millisecond
	cfg.DNS.Servers["dead"] = bad
	yaml := `
runbooks:
  - name: two-step
    trigger: {match: 'slo=edge-latency'}
    steps:
      - name: lower-ttl
        dns: {server: primary, op: set_ttl, name: 'edge-{{ .Labels.region }}', type: A, ttl: 30}
      - name: notify
        webhook: {endpoint: ops}
      - name: secondary
        dns: {server: dead, op: set_ttl, name: 'edge-{{ .Labels.region }}', type: A, ttl: 30}
`
	f := newFixture(t, cfg, newStatus([]string{"eu"}), yaml)
	run := f.wait(t, f.fire(t, "two-step", "fp1", labels("eu")), StateRolledBack)
	if !strings.Contains(run.Reason, "step secondary failed") {
		t.Errorf("reason %q", run.Reason)
	}
	if diff := cmp.Diff([]string{"300 127.0.1.1", "300 127.0.1.2"}, b.dig(t, "edge-eu.example.test", "A")); diff != "" {
		t.Errorf("TTL not restored (-want +got):\n%s", diff)
	}
	evs := rc.got()
	if len(evs) != 2 || evs[1].Phase != "undo" {
		t.Errorf("webhook events %+v, want apply and undo", evs)
	}
	want := []string{"undone", "undone", "failed"}
	for i, s := range run.Steps {
		if s.State != want[i] {
			t.Errorf("step %s: %s, want %s", s.Name, s.State, want[i])
		}
	}
	// Undo runs in reverse: the webhook undo is recorded before the TTL's.
	var order []string
	for _, a := range run.Audit {
		if a.Kind == "undo" {
			order = append(order, strings.Fields(a.Detail)[1])
		}
	}
	if diff := cmp.Diff([]string{"notify:", "lower-ttl:"}, order); diff != "" {
		t.Errorf("undo order (-want +got):\n%s", diff)
	}
}

// TestAlertToFirstActionLatency measures, without approval, the time from a
// firing alert to the completion of the first action (an RFC 2136 update
// acknowledged by BIND). It logs the figures; it asserts no time.
func TestAlertToFirstActionLatency(t *testing.T) {
	b := startBIND(t)
	yaml := `
runbooks:
  - name: ttl
    trigger: {match: 'slo=edge-latency'}
    cooldown: 1ns
    steps:
      - dns: {server: primary, op: set_ttl, name: 'edge-{{ .Labels.region }}', type: A, ttl: 30}
`
	cfg := dnsConfig(b)
	cfg.RateLimitRuns = 1000
	f := newFixture(t, cfg, newStatus([]string{"eu"}), yaml)
	var lat []time.Duration
	for i := 0; i < 20; i++ {
		t0 := time.Now()
		done := make(chan struct{})
		f.setOnStep(func(*Run, int) { close(done) })
		f.e.HandleAlert(Alert{Labels: labels("eu"), Status: StatusFiring, Fingerprint: fmt.Sprint("lat", i)})
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("no first action")
		}
		lat = append(lat, time.Since(t0))
		id, _ := f.e.RunForAlert("ttl", fmt.Sprint("lat", i))
		f.wait(t, id, StateSucceeded)
	}
	sortDur(lat)
	t.Logf("firing alert → first action done (BIND acknowledged the update), 20 runs: min %s, median %s, max %s",
		lat[0], lat[len(lat)/2], lat[len(lat)-1])
	if v := b.dig(t, "edge-eu.example.test", "A"); len(v) == 0 || !strings.HasPrefix(v[0], "30 ") {
		t.Errorf("dig %v", v)
	}
	_ = os.Getenv
}

func sortDur(d []time.Duration) {
	for i := 1; i < len(d); i++ {
		for j := i; j > 0 && d[j] < d[j-1]; j-- {
			d[j], d[j-1] = d[j-1], d[j]
		}
	}
}
