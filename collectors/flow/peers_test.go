package flow

import (
	"context"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/meridian-obs/meridian/internal/testutil/chtest"
	"github.com/meridian-obs/meridian/internal/testutil/pipetest"
	"github.com/meridian-obs/meridian/pipeline"
	"github.com/meridian-obs/meridian/pipeline/store"
)

func TestMain(m *testing.M) { chtest.Main(m) }

func need(t *testing.T, bins ...string) {
	t.Helper()
	for _, b := range bins {
		if _, err := exec.LookPath(b); err != nil {
			chtest.Unavailable(t, "%s not installed (Debian packages softflowd, nfdump, pmacct)", b)
		}
	}
}

func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// stack is ClickHouse + store + pipeline + the flow collector.
type stack struct {
	st  *store.Store
	p   *pipeline.Pipeline
	c   *Collector
	m   *metrics
	reg *prometheus.Registry
}

func newStack(t testing.TB, cfg Config) *stack {
	t.Helper()
	st, p, reg := pipetest.Start(t, pipeline.DefaultConfig().FlushRows)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := New(cfg, Deps{Registry: reg, Sink: p.Flows()})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	s := &stack{st: st, p: p, c: c, m: c.m, reg: reg}
	t.Cleanup(func() { s.stop(t) })
	return s
}

func (s *stack) stop(t testing.TB) {
	if s.c == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := s.c.Stop(ctx); err != nil {
		t.Error(err)
	}
	if err := s.p.Stop(ctx); err != nil {
		t.Error(err)
	}
	s.c = nil
}

func (s *stack) totals(t testing.TB, where string) (n, bytes, packets uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.st.Conn().QueryRow(ctx, "SELECT count(), sum(bytes), sum(packets) FROM flows WHERE "+where).Scan(&n, &bytes, &packets); err != nil {
		t.Fatal(err)
	}
	return
}

// datagrams is the number of datagrams the collector accepted (any type).
func (s *stack) datagrams() float64 {
	var n float64
	mfs, _ := s.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "meridian_flow_datagrams_total" {
			for _, m := range mf.GetMetric() {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}

// tee forwards every datagram received on its port to each of dsts, in
// order, and counts them: the collector and the reference collector see
// the very same export.
func tee(t *testing.T, dsts ...string) (addr string, count *atomic.Int64) {
	t.Helper()
	in, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var outs []net.Conn
	for _, d := range dsts {
		c, err := net.Dial("udp", d)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, c)
	}
	count = new(atomic.Int64)
	go func() {
		buf := make([]byte, 65536)
		for {
			n, _, err := in.ReadFrom(buf)
			if err != nil {
				return
			}
			for _, o := range outs {
				_, _ = o.Write(buf[:n])
			}
			count.Add(1)
			time.Sleep(200 * time.Microsecond) // stay gentle with the receivers' buffers
		}
	}()
	t.Cleanup(func() {
		in.Close()
		for _, o := range outs {
			o.Close()
		}
	})
	return in.LocalAddr().String(), count
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitForAll waits until the tee has been quiet for a while (the exporter
// is done) and the collector has taken every datagram it forwarded.
func waitForAll(t *testing.T, s *stack, sent *atomic.Int64) {
	t.Helper()
	last, since := int64(-1), time.Now()
	waitFor(t, "the collector to receive every datagram", func() bool {
		if n := sent.Load(); n != last {
			last, since = n, time.Now()
			return false
		}
		return last > 0 && time.Since(since) > 500*time.Millisecond && s.datagrams() == float64(last)
	})
}

// nfcapd starts nfdump's collector on a free loopback port; stop ends it and
// returns nfdump's totals of what it stored.
func nfcapd(t *testing.T) (addr string, stop func() (flows, packets, bytes uint64)) {
	t.Helper()
	dir := t.TempDir()
	port := freeUDPPort(t)
	cmd := exec.Command("nfcapd", "-w", dir, "-p", strconv.Itoa(port), "-b", "127.0.0.1")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	// nfcapd is ready when its socket is bound.
	waitFor(t, "nfcapd to bind", func() bool {
		c, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port))
		if err == nil {
			c.Close()
			return false
		}
		return true
	})
	return "127.0.0.1:" + strconv.Itoa(port), func() (flows, packets, bytes uint64) {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		out, err := exec.Command("nfdump", "-R", dir, "-q", "-N", "-o", "fmt:%pkt %byt").Output()
		if err != nil {
			t.Fatalf("nfdump: %v", err)
		}
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			f := strings.Fields(l)
			if len(f) != 2 {
				continue
			}
			p, err1 := strconv.ParseUint(f[0], 10, 64)
			b, err2 := strconv.ParseUint(f[1], 10, 64)
			if err1 != nil || err2 != nil {
				t.Fatalf("nfdump line %q", l)
			}
			flows++
			packets += p
			bytes += b
		}
		return
	}
}

func softflowd(t *testing.T, pcap, dst, version string) {
	t.Helper()
	softflowdArgs(t, pcap, dst, version)
}

func softflowdArgs(t *testing.T, pcap, dst, version string, extra ...string) {
	t.Helper()
	dir := t.TempDir()
	// "-c none": no control socket. With one, softflowd 1.1.0 in -r mode
	// reads an uninitialised poll entry and, depending on stack garbage
	// (seen with long socket paths), blocks in accept() forever.
	args := []string{"-r", pcap, "-n", dst, "-v", version, "-d", "-p", filepath.Join(dir, "pid"), "-c", "none"}
	if version != "5" {
		args = append(args, "-6")
	}
	args = append(args, extra...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "softflowd", args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("softflowd %v: %v\n%s", args, err, out)
	}
	t.Logf("softflowd: %s", out)
}

// TestSoftflowdAgainstNfdump: softflowd exports the flows of a generated
// pcap as NetFlow v5, v9 and IPFIX; a tee sends every datagram to the
// collector and to nfcapd. Flows, bytes and packets in ClickHouse equal
// nfdump's totals exactly, and the rollups hold the same totals.
func TestSoftflowdAgainstNfdump(t *testing.T) {
	need(t, "softflowd", "nfcapd", "nfdump")
	for _, tc := range []struct {
		version, flowType string
		rate              uint64 // softflowd -s: 1 in rate packets, announced in the v5 header or options data
	}{
		{"5", typeNetFlow5, 1}, {"9", typeNetFlow9, 1}, {"10", typeIPFIX, 1},
		{"5", typeNetFlow5, 10}, {"9", typeNetFlow9, 10}, {"10", typeIPFIX, 10},
	} {
		t.Run("v"+tc.version+"/rate"+strconv.FormatUint(tc.rate, 10), func(t *testing.T) {
			pcap := filepath.Join(t.TempDir(), "traffic.pcap")
			pkts, ipBytes := pcapTraffic(t, pcap, 600, tc.version != "5", time.Now().Add(-time.Minute))
			cfg := DefaultConfig()
			cfg.NetFlowListen, cfg.SFlowListen = "127.0.0.1:0", ""
			cfg.Networks = testNetworks().Networks
			s := newStack(t, cfg)
			refAddr, refStop := nfcapd(t)
			teeAddr, sent := tee(t, s.c.NetFlowAddr().String(), refAddr)
			if tc.rate > 1 {
				softflowdArgs(t, pcap, teeAddr, tc.version, "-s", strconv.FormatUint(tc.rate, 10))
			} else {
				softflowd(t, pcap, teeAddr, tc.version)
			}
			waitForAll(t, s, sent)
			s.stop(t)
			rf, rp, rb := refStop()
			n, b, p := s.totals(t, "flow_type = '"+tc.flowType+"'")
			t.Logf("pcap: %d packets, %d IP bytes; nfdump: %d flows, %d packets, %d bytes; ClickHouse: %d flows, %d packets, %d bytes (%d datagrams)",
				pkts, ipBytes, rf, rp, rb, n, p, b, sent.Load())
			if n != rf {
				mfs, _ := s.reg.Gather()
				for _, mf := range mfs {
					for _, m := range mf.GetMetric() {
						if m.GetCounter() != nil && m.GetCounter().GetValue() > 0 {
							t.Logf("%s %v %v", mf.GetName(), m.GetLabel(), m.GetCounter().GetValue())
						}
					}
				}
			}
			// nfdump 1.7 applies the sampling interval of the NetFlow v5
			// header itself but stores the v9/IPFIX counters as exported
			// (it ignores their sampling options): ClickHouse must hold
			// those multiplied by the announced rate.
			scale := tc.rate
			if tc.version == "5" {
				scale = 1
			}
			if rf == 0 || n != rf || p != rp*scale || b != rb*scale {
				t.Fatalf("ClickHouse (%d flows, %d packets, %d bytes) != nfdump (%d, %d, %d) × %d", n, p, b, rf, rp, rb, scale)
			}
			var rmin, rmax uint64
			if err := s.st.Conn().QueryRow(context.Background(), "SELECT min(sampling_rate), max(sampling_rate) FROM flows").Scan(&rmin, &rmax); err != nil {
				t.Fatal(err)
			}
			if rmin != tc.rate || rmax != tc.rate {
				t.Errorf("sampling_rate column from %d to %d, want %d", rmin, rmax, tc.rate)
			}
			if tc.version != "5" && tc.rate == 1 && (p != pkts || b != ipBytes) {
				t.Errorf("totals differ from the pcap (%d packets, %d bytes)", pkts, ipBytes)
			}
			var v6 uint64
			ctx := context.Background()
			if err := s.st.Conn().QueryRow(ctx, "SELECT count() FROM flows WHERE etype = 34525 AND src_region = 'ap-south'").Scan(&v6); err != nil {
				t.Fatal(err)
			}
			if tc.version != "5" && v6 == 0 {
				t.Error("no IPv6 flow enriched with its region")
			}
			for _, table := range []string{"flows_1m_region", "flows_1h_region", "flows_1m_exporter", "flows_1h_exporter", "flows_1m_port", "flows_1h_port"} {
				var rn, rbytes, rpk uint64
				if err := s.st.Conn().QueryRow(ctx, "SELECT sum(flows), sum(bytes), sum(packets) FROM "+table).Scan(&rn, &rbytes, &rpk); err != nil {
					t.Fatal(err)
				}
				if rn != n || rbytes != b || rpk != p {
					t.Errorf("%s: %d flows, %d bytes, %d packets; want %d, %d, %d", table, rn, rbytes, rpk, n, b, p)
				}
			}
			if e := testutil.CollectAndCount(s.m.errors); e != 0 {
				t.Errorf("%d decode error series", e)
			}
		})
	}
}

var _ = netip.Addr{}

// pmacctdSFlow runs pmacctd with its sfprobe plugin over the pcap, sending
// sFlow v5 to dst at sampling rate 1, until it has read the file and the
// plugin has had time to send.
func pmacctdSFlow(t *testing.T, pcap, dst string) {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "pmacctd.conf")
	if err := os.WriteFile(conf, []byte(`daemonize: false
pcap_savefile: `+pcap+`
pcap_savefile_wait: true
plugins: sfprobe
sfprobe_receiver: `+dst+`
sfprobe_agentip: 127.0.0.1
sampling_rate: 1
plugin_buffer_size: 2048
plugin_pipe_size: 2048000
`), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("pmacctd", "-f", conf)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	waitFor(t, "pmacctd to read the pcap", func() bool { return strings.Contains(out.String(), "finished reading PCAP") })
	time.Sleep(3 * time.Second) // sfprobe sends on its one-second ticks
	_ = cmd.Process.Signal(os.Interrupt)
	_ = cmd.Wait()
	t.Logf("pmacctd: %s", out.String())
}

// sfacctd starts pmacct's sFlow collector on a free loopback port as the
// reference; stop ends it and returns its totals (packets, bytes; rate 1).
func sfacctd(t *testing.T) (addr string, stop func() (packets, bytes uint64)) {
	t.Helper()
	dir := t.TempDir()
	port := freeUDPPort(t)
	csv := filepath.Join(dir, "out.csv")
	conf := filepath.Join(dir, "sfacctd.conf")
	if err := os.WriteFile(conf, []byte(`daemonize: false
sfacctd_ip: 127.0.0.1
sfacctd_port: `+strconv.Itoa(port)+`
plugins: print
aggregate: proto
print_output: csv
print_output_file: `+csv+`
print_output_file_append: true
print_refresh_time: 1
`), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sfacctd", "-f", conf)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	waitFor(t, "sfacctd to bind", func() bool {
		c, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port))
		if err == nil {
			c.Close()
			return false
		}
		return true
	})
	return "127.0.0.1:" + strconv.Itoa(port), func() (packets, bytes uint64) {
		time.Sleep(2 * time.Second) // one more refresh of the print plugin
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		b, err := os.ReadFile(csv)
		if err != nil {
			t.Fatalf("sfacctd output: %v\n%s", err, out.String())
		}
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			f := strings.Split(l, ",")
			if len(f) != 3 || f[0] == "PROTOCOL" {
				continue
			}
			p, err1 := strconv.ParseUint(f[1], 10, 64)
			by, err2 := strconv.ParseUint(f[2], 10, 64)
			if err1 != nil || err2 != nil {
				t.Fatalf("sfacctd line %q", l)
			}
			packets += p
			bytes += by
		}
		return
	}
}

// TestPmacctdSFlow: pmacctd's sfprobe samples the packets of a generated
// pcap (rate 1) and exports sFlow v5; a tee sends every datagram to the
// collector and to pmacct's sfacctd as the reference. Each sample is one
// flow of one packet whose bytes are the frame length: flows, packets and
// bytes in ClickHouse equal sfacctd's totals exactly.
func TestPmacctdSFlow(t *testing.T) {
	need(t, "pmacctd", "sfacctd")
	pcap := filepath.Join(t.TempDir(), "traffic.pcap")
	// sfprobe ticks on packet time: stamp the traffic now.
	pkts, _ := pcapTraffic(t, pcap, 300, false, time.Now())
	cfg := DefaultConfig()
	cfg.NetFlowListen, cfg.SFlowListen = "", "127.0.0.1:0"
	cfg.Networks = testNetworks().Networks
	s := newStack(t, cfg)
	refAddr, refStop := sfacctd(t)
	teeAddr, sent := tee(t, s.c.SFlowAddr().String(), refAddr)
	pmacctdSFlow(t, pcap, teeAddr)
	waitForAll(t, s, sent)
	s.stop(t)
	rp, rb := refStop()
	n, b, p := s.totals(t, "flow_type = 'sflow5'")
	t.Logf("pcap: %d packets; sfacctd: %d packets, %d bytes; ClickHouse: %d flows, %d packets, %d bytes (%d datagrams)", pkts, rp, rb, n, p, b, sent.Load())
	if rp == 0 || n != rp || p != rp || b != rb {
		t.Fatalf("ClickHouse (%d flows, %d packets, %d bytes) != sfacctd (%d packets, %d bytes)", n, p, b, rp, rb)
	}
	if e := testutil.CollectAndCount(s.m.errors); e != 0 {
		t.Errorf("%d decode error series", e)
	}
}
