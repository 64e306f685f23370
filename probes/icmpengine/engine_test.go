package icmpengine

import (
	"context"
	"fmt"
	"math"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meridian-obs/meridian/probes"
	"github.com/meridian-obs/meridian/probes/internal/nftloss"
)

func open(t testing.TB) *Engine {
	t.Helper()
	if os.Geteuid() != 0 {
		nftloss.Unavailable(t, "raw ICMP sockets need root")
	}
	e, err := Open(probes.NewMetrics(prometheus.NewRegistry()))
	if err != nil {
		nftloss.Unavailable(t, "%v", err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func TestEngineLossWithNftables(t *testing.T) {
	const addr = "127.0.0.78"
	rule := nftloss.Install(t, addr, 10)
	e := open(t)
	const n = 400
	r := e.Probe(context.Background(), probes.Check{Type: probes.TypeICMP, Target: addr, Count: n, Spacing: 2 * time.Millisecond, Timeout: time.Second})
	dropped := rule.Dropped(t)
	if r.Sent != n || r.Sent-r.Received != dropped {
		t.Fatalf("sent %d received %d, nftables dropped %d", r.Sent, r.Received, dropped)
	}
	sd := math.Sqrt(0.1 * 0.9 / n)
	if math.Abs(r.LossRatio-0.1) > 3*sd {
		t.Errorf("loss %.4f, want 0.10 ± %.4f", r.LossRatio, 3*sd)
	}
	if r.RTTMinMs <= 0 || r.RTTMaxMs < r.RTTMinMs || r.Duplicates != 0 || r.TargetAddr != addr {
		t.Errorf("round %+v", r)
	}
	t.Logf("engine: sent %d received %d nft dropped %d loss %.4f avg %.3f ms p99 %.3f ms", r.Sent, r.Received, dropped, r.LossRatio, r.RTTAvgMs, r.RTTP99Ms)
}

// Many concurrent rounds share the sockets; every reply reaches its round.
func TestEngineConcurrentTargets(t *testing.T) {
	e := open(t)
	const targets = 200
	var wg sync.WaitGroup
	results := make([]probes.Result, targets)
	for i := 0; i < targets; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i] = e.Probe(context.Background(), probes.Check{Type: probes.TypeICMP,
				Target: fmt.Sprintf("127.1.%d.%d", i/250, i%250+1), Count: 5, Spacing: 10 * time.Millisecond, Timeout: time.Second})
		}(i)
	}
	wg.Wait()
	for i, r := range results {
		if r.Received != 5 || r.Error != "" || r.TargetAddr != fmt.Sprintf("127.1.%d.%d", i/250, i%250+1) {
			t.Fatalf("target %d: %+v", i, r)
		}
	}
	sent, recv, _ := e.Stats()
	if sent != targets*5 || recv != targets*5 {
		t.Errorf("engine stats sent %d recv %d", sent, recv)
	}
}

func TestEngineIPv6AndBadTarget(t *testing.T) {
	e := open(t)
	r := e.Probe(context.Background(), probes.Check{Type: probes.TypeICMP, Target: "::1", Count: 3, Spacing: time.Millisecond, Timeout: time.Second})
	if e.c6 != nil && (r.Received != 3 || r.TargetAddr != "::1") {
		t.Errorf("::1: %+v", r)
	}
	r = e.Probe(context.Background(), probes.Check{Type: probes.TypeICMP, Target: "no-such-host.invalid", Count: 3, Timeout: 200 * time.Millisecond})
	if r.Error != "dns" || r.LossRatio != 1 {
		t.Errorf("bad name: %+v", r)
	}
}

func TestChecksum(t *testing.T) {
	// RFC 1071 example words 0001 f203 f4f5 f6f7 sum to ddf2 → checksum 220d.
	if got := checksum([]byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}); got != 0x220d {
		t.Errorf("checksum %04x, want 220d", got)
	}
}

// A target that never answers (nftables drops everything to it) costs its
// own round a timeout and nothing else: rounds to healthy targets sharing
// the engine finish as fast as without it.
func TestEngineBlackholeDoesNotStallOthers(t *testing.T) {
	const dead = "127.0.0.79"
	rule := nftloss.Install(t, dead, 100)
	e := open(t)
	var wg sync.WaitGroup
	var deadRes probes.Result
	wg.Add(1)
	go func() {
		defer wg.Done()
		deadRes = e.Probe(context.Background(), probes.Check{Type: probes.TypeICMP, Target: dead, Count: 20, Spacing: 5 * time.Millisecond, Timeout: 2 * time.Second})
	}()
	time.Sleep(20 * time.Millisecond)
	t0 := time.Now()
	for i := 0; i < 10; i++ {
		r := e.Probe(context.Background(), probes.Check{Type: probes.TypeICMP, Target: fmt.Sprintf("127.0.1.%d", i+1), Count: 3, Spacing: time.Millisecond, Timeout: 2 * time.Second})
		if r.Received != 3 {
			t.Errorf("healthy target %d: %+v", i, r)
		}
	}
	// Ten healthy rounds complete on their answers, long before the dead
	// round's 2 s timeout (a generous bound: this only fails if they waited).
	if d := time.Since(t0); d > 1500*time.Millisecond {
		t.Errorf("healthy rounds took %s while a blackholed round was pending", d)
	}
	wg.Wait()
	if deadRes.Received != 0 || deadRes.Error != "timeout" || deadRes.Sent != 20 || rule.Dropped(t) != 20 {
		t.Errorf("dead round %+v, dropped %d", deadRes, rule.Dropped(t))
	}
}

// ProbeMany: one call, many rounds; each result belongs to its own target.
func TestEngineProbeMany(t *testing.T) {
	e := open(t)
	var cs []probes.Check
	for i := 0; i < 50; i++ {
		cs = append(cs, probes.Check{Name: fmt.Sprintf("c%d", i), Type: probes.TypeICMP, Target: fmt.Sprintf("127.3.0.%d", i+1),
			Count: 3, Spacing: 5 * time.Millisecond, Timeout: time.Second})
	}
	cs = append(cs, probes.Check{Name: "bad", Type: probes.TypeICMP, Target: "no-such-host.invalid", Count: 3, Timeout: time.Second})
	t0 := time.Now()
	rs := e.ProbeMany(context.Background(), cs)
	if d := time.Since(t0); d > 900*time.Millisecond {
		t.Errorf("ProbeMany waited %s though every live target answered", d)
	}
	for i, r := range rs[:50] {
		if r.Check != cs[i].Name || r.TargetAddr != cs[i].Target || r.Received != 3 || r.Sent != 3 {
			t.Errorf("result %d: %+v", i, r)
		}
	}
	if bad := rs[50]; bad.Error != "dns" || bad.Received != 0 || bad.Check != "bad" {
		t.Errorf("bad target: %+v", bad)
	}
}
