package probes

import (
	"context"
	"math"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meridian-obs/meridian/probes/internal/nftloss"
)

// ICMP loss injected with nftables: the measured loss equals the rule's
// counter exactly and lies within 3 binomial standard deviations of 10%.
func TestICMPLossWithNftables(t *testing.T) {
	const addr = "127.0.0.77"
	rule := nftloss.Install(t, addr, 10)
	const n = 300
	r := (&ICMP{Metrics: NewMetrics(prometheus.NewRegistry())}).Probe(context.Background(),
		Check{Type: TypeICMP, Target: addr, Count: n, Spacing: 5 * time.Millisecond, Timeout: time.Second})
	dropped := rule.Dropped(t)
	if r.Sent != n {
		t.Fatalf("sent %d, want %d (%+v)", r.Sent, n, r.Error)
	}
	if r.Sent-r.Received != dropped {
		t.Errorf("lost %d, nftables dropped %d", r.Sent-r.Received, dropped)
	}
	sd := math.Sqrt(0.1 * 0.9 / n)
	if math.Abs(r.LossRatio-0.1) > 3*sd {
		t.Errorf("loss %.4f, want 0.10 ± %.4f", r.LossRatio, 3*sd)
	}
	if r.TargetAddr != addr || r.RTTAvgMs <= 0 || r.RTTAvgMs > 50 || len(r.RTTsUs) != r.Received {
		t.Errorf("round: avg %.3f addr %s rtts %d", r.RTTAvgMs, r.TargetAddr, len(r.RTTsUs))
	}
	t.Logf("pro-bing: sent %d received %d, nft dropped %d, loss %.4f, avg %.3f ms p99 %.3f ms", r.Sent, r.Received, dropped, r.LossRatio, r.RTTAvgMs, r.RTTP99Ms)
}

func TestICMPBadTarget(t *testing.T) {
	r := (&ICMP{Metrics: NewMetrics(prometheus.NewRegistry())}).Probe(context.Background(),
		Check{Type: TypeICMP, Target: "no-such-host.invalid", Count: 2, Timeout: 100 * time.Millisecond})
	if r.Received != 0 || r.Error == "" || r.LossRatio != 1 {
		t.Errorf("bad target: %+v", r)
	}
}

func TestICMPIPv6Loopback(t *testing.T) {
	if _, err := net.Dial("udp6", "[::1]:9"); err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	r := (&ICMP{}).Probe(context.Background(), Check{Type: TypeICMP, Target: "::1", Count: 5, Spacing: 5 * time.Millisecond, Timeout: time.Second})
	if r.Received != 5 || r.TargetAddr != "::1" || r.Error != "" {
		t.Errorf("::1: %+v", r)
	}
}
