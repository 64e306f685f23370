package runbooks

import (
	"fmt"
	"testing"
	"time"
)

// benchFirstAction measures a firing alert → the completion of the first
// action of a run without approval, through HandleAlert, matching, planning,
// guardrails, the audit records and the action itself.
func benchFirstAction(b *testing.B, f *fixture, runbook string) {
	var total time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		done := make(chan struct{})
		f.setOnStep(func(_ *Run, step int) {
			if step == 0 {
				close(done)
			}
		})
		t0 := time.Now()
		f.e.HandleAlert(Alert{Labels: labels("eu"), Status: StatusFiring, Fingerprint: fmt.Sprint("bench", i)})
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			b.Fatal("no first action")
		}
		total += time.Since(t0)
		b.StopTimer()
		id, _ := f.e.RunForAlert(runbook, fmt.Sprint("bench", i))
		f.wait(b, id, StateSucceeded, StateRolledBack)
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/first-action")
}

func BenchmarkAlertToFirstActionWebhook(b *testing.B) {
	rc := newReceiver(b)
	cfg := webhookConfig(b, rc)
	cfg.RateLimitRuns, cfg.MaxConcurrent = 1<<30, 4
	f := newFixture(b, cfg, newStatus([]string{"eu", "us"}, "eu"), hookYAML("cooldown: 1ns"))
	benchFirstAction(b, f, "edge-notify")
}

func BenchmarkAlertToFirstActionDNS(b *testing.B) {
	bd := startBIND(b)
	cfg := dnsConfig(bd)
	cfg.RateLimitRuns = 1 << 30
	yaml := `
runbooks:
  - name: ttl
    trigger: {match: 'slo=edge-latency'}
    cooldown: 1ns
    steps:
      - dns: {server: primary, op: set_ttl, name: 'edge-{{ .Labels.region }}', type: A, ttl: 30}
`
	f := newFixture(b, cfg, newStatus([]string{"eu"}), yaml)
	benchFirstAction(b, f, "ttl")
}
