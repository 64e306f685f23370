package flow

import (
	"context"
	"os"
	"strconv"
	"strings"
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
		if os.Getenv("MERIDIAN_BENCH_NO_ROLLUPS") != "" {
			// Measure the cost of the rollups' materialized views.
			for _, g := range []string{"1m", "1h"} {
				for _, r := range []string{"region", "exporter", "port"} {
					if err := s.st.Conn().Exec(context.Background(), "DROP TABLE IF EXISTS flows_"+g+"_"+r+"_mv"); err != nil {
						b.Fatal(err)
					}
				}
			}
		}
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
		got := s.datagrams()
		procDrops := procUDPDrops(b, s.c.NetFlowAddr().Port()) + procUDPDrops(b, s.c.SFlowAddr().Port())
		s.stop(b)
		total := time.Since(start)
		mfs, _ := s.reg.Gather()
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				if c := m.GetCounter(); c != nil && c.GetValue() > 0 && (strings.Contains(mf.GetName(), "pipeline_rows") || strings.Contains(mf.GetName(), "flow_")) {
					b.Logf("%s %v %v", mf.GetName(), m.GetLabel(), c.GetValue())
				}
				if h := m.GetHistogram(); h != nil && h.GetSampleCount() > 0 && strings.Contains(mf.GetName(), "pipeline") {
					b.Logf("%s %v: %d observations, mean %.3f", mf.GetName(), m.GetLabel(), h.GetSampleCount(), h.GetSampleSum()/float64(h.GetSampleCount()))
				}
			}
		}
		b.Logf("datagrams sent %d, decoded %v before stop; /proc/net/udp drops %d", datagrams, got, procDrops)
		n, _, _ := s.totals(b, "1")
		drops := testutil.ToFloat64(s.m.socketDrops.WithLabelValues("netflow")) + testutil.ToFloat64(s.m.socketDrops.WithLabelValues("sflow")) +
			testutil.ToFloat64(s.m.discarded.WithLabelValues("netflow", "shutdown")) + testutil.ToFloat64(s.m.discarded.WithLabelValues("sflow", "shutdown"))
		lost := float64(tot.Flows-n) / float64(tot.Flows) * 100
		b.ReportMetric(float64(tot.Flows)/sendDur.Seconds(), "offered_flows/s")
		b.ReportMetric(float64(n)/total.Seconds(), "stored_flows/s")
		b.ReportMetric(lost, "lost_%")
		b.ReportMetric(drops, "socket_lost_datagrams")
		b.Logf("%s: sent %d flows in %d datagrams in %.2fs; stored %d in ClickHouse %.2fs after the first datagram; lost %.4f%%; datagrams lost at the socket (kernel drops + discarded at stop) %v",
			kind, tot.Flows, datagrams, sendDur.Seconds(), n, total.Seconds(), lost, drops)
	}
}

// procUDPDrops sums the drops column of /proc/net/udp and udp6 for sockets
// bound to port (a cross-check of SO_RXQ_OVFL).
func procUDPDrops(tb testing.TB, port uint16) uint64 {
	var n uint64
	hex := strings.ToUpper(strconv.FormatUint(uint64(port), 16))
	for len(hex) < 4 {
		hex = "0" + hex
	}
	for _, f := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(l)
			if len(fs) < 13 || !strings.HasSuffix(fs[1], ":"+hex) {
				continue
			}
			d, _ := strconv.ParseUint(fs[len(fs)-1], 10, 64)
			n += d
		}
	}
	return n
}

// BenchmarkCollectorUDP measures the collector alone: the load generator
// sends MERIDIAN_BENCH_FLOWS flows (default 2,000,000) of IPFIX over
// loopback as fast as it can (or at MERIDIAN_BENCH_RATE) to the collector,
// whose sink only counts. It reports the flows/s received and the loss at
// the socket. Generator, kernel and collector share the machine's cores.
func BenchmarkCollectorUDP(b *testing.B) {
	flows := envInt("MERIDIAN_BENCH_FLOWS", 2_000_000)
	rate := envInt("MERIDIAN_BENCH_RATE", 0)
	if os.Getenv("MERIDIAN_BENCH_RATE") == "" {
		rate = 0
	}
	for b.Loop() {
		sink := &countSink{types: map[string]uint64{}}
		cfg := DefaultConfig()
		cfg.NetFlowListen, cfg.SFlowListen = "127.0.0.1:0", ""
		cfg.Readers = envInt("MERIDIAN_BENCH_READERS", 2)
		cfg.RcvBuf = 64 << 20
		cfg.Networks = testNetworks().Networks
		c, err := New(cfg, Deps{Sink: sink})
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		tot, datagrams, err := flowgen.Send(context.Background(), flowgen.SendConfig{Kind: flowgen.IPFIX, Addr: c.NetFlowAddr().String(), Rate: rate, Flows: uint64(flows)})
		if err != nil {
			b.Fatal(err)
		}
		_ = c.Stop(context.Background())
		el := time.Since(start)
		lost := testutil.ToFloat64(c.m.socketDrops.WithLabelValues("netflow")) + testutil.ToFloat64(c.m.discarded.WithLabelValues("netflow", "shutdown"))
		b.ReportMetric(float64(sink.flows)/el.Seconds(), "received_flows/s")
		b.ReportMetric(lost/float64(datagrams)*100, "socket_loss_%")
		b.Logf("sent %d flows in %d datagrams; sink got %d in %.2fs; %v datagrams lost at the socket", tot.Flows, datagrams, sink.flows, el.Seconds(), lost)
	}
}
