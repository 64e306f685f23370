package flow

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/meridian-obs/meridian/collectors/flow/flowgen"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkEndToEnd sends IPFIX from the load generator (in-process, same
// machine) over loopback UDP to the collector, through the pipeline into a
// managed ClickHouse, at MERIDIAN_BENCH_RATE flows/s (default 200000) for
// MERIDIAN_BENCH_SECONDS (default 10). It reports the offered rate, the
// rate stored in ClickHouse (stored flows over the time from the first
// datagram until the last row is inserted), the loss and the kernel's
// socket drops. Run it once: -bench EndToEnd -benchtime 1x.
func BenchmarkEndToEnd(b *testing.B) {
	rate := envInt("MERIDIAN_BENCH_RATE", 200_000)
	secs := envInt("MERIDIAN_BENCH_SECONDS", 10)
	kind := os.Getenv("MERIDIAN_BENCH_KIND")
	if kind == "" {
		kind = flowgen.IPFIX
	}
	for b.Loop() {
		cfg := DefaultConfig()
		cfg.NetFlowListen, cfg.SFlowListen = "127.0.0.1:0", "127.0.0.1:0"
		cfg.Readers = envInt("MERIDIAN_BENCH_READERS", 2)
		cfg.RcvBuf = 64 << 20
		cfg.Networks = testNetworks().Networks
		s := newStack(b, cfg)
		addr := s.c.NetFlowAddr().String()
		if kind == flowgen.SFlow5 {
			addr = s.c.SFlowAddr().String()
		}
		start := time.Now()
		tot, datagrams, err := flowgen.Send(context.Background(), flowgen.SendConfig{
			Kind: kind, Addr: addr, Rate: rate, Flows: uint64(rate * secs),
		})
		if err != nil {
			b.Fatal(err)
		}
		sendDur := time.Since(start)
		deadline := time.Now().Add(30 * time.Second)
		for s.datagrams() < float64(datagrams) && time.Now().Before(deadline) {
			// Drops mean some never arrive: stop waiting once they account for the gap.
			if s.datagrams()+testutil.ToFloat64(s.m.socketDrops.WithLabelValues("netflow"))+testutil.ToFloat64(s.m.socketDrops.WithLabelValues("sflow")) >= float64(datagrams) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		s.stop(b)
		total := time.Since(start)
		n, _, _ := s.totals(b, "1")
		drops := testutil.ToFloat64(s.m.socketDrops.WithLabelValues("netflow")) + testutil.ToFloat64(s.m.socketDrops.WithLabelValues("sflow"))
		lost := float64(tot.Flows-n) / float64(tot.Flows) * 100
		b.ReportMetric(float64(tot.Flows)/sendDur.Seconds(), "offered_flows/s")
		b.ReportMetric(float64(n)/total.Seconds(), "stored_flows/s")
		b.ReportMetric(lost, "lost_%")
		b.ReportMetric(drops, "socket_drops")
		b.Logf("%s: sent %d flows in %d datagrams in %.2fs; stored %d in ClickHouse %.2fs after the first datagram; lost %.4f%%; kernel socket drops %v datagrams",
			kind, tot.Flows, datagrams, sendDur.Seconds(), n, total.Seconds(), lost, drops)
	}
}
