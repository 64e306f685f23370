package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/meridian-obs/meridian/internal/testutil/chtest"
	"github.com/meridian-obs/meridian/pipeline/record"
	"github.com/meridian-obs/meridian/pipeline/store"
)

func TestMain(m *testing.M) { chtest.Main(m) }

// testFlow returns a flow whose Bytes is its unique id i.
func testFlow(i int, t time.Time) record.Flow {
	return record.Flow{
		TimeReceived: t, TimeStart: t.Add(-time.Second), TimeEnd: t, FlowType: "ipfix",
		ExporterAddr: netip.MustParseAddr("192.0.2.1"), ExporterRegion: "eu-west", SamplingRate: 1,
		SrcAddr: netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), DstAddr: netip.MustParseAddr("2001:db8::1"),
		SrcPort: uint16(i), DstPort: 443, Proto: 6, EType: 0x0800, SrcRegion: "eu-west", DstRegion: "us-east",
		Bytes: uint64(i), Packets: 1,
	}
}

type harness struct {
	st  *store.Store
	p   *Pipeline
	reg *prometheus.Registry
	cfg store.Config
}

func newHarness(t *testing.T, scfg store.Config, pcfg Config) *harness {
	t.Helper()
	reg := prometheus.NewRegistry()
	st, err := store.New(scfg, store.Deps{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := st.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Stop(context.Background()) })
	if pcfg.SpoolDir == DefaultConfig().SpoolDir {
		pcfg.SpoolDir = t.TempDir()
	}
	p, err := New(pcfg, Deps{Store: st, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	return &harness{st: st, p: p, reg: reg, cfg: scfg}
}

func (h *harness) start(t *testing.T) {
	t.Helper()
	if err := h.p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func (h *harness) stop(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := h.p.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}

// flowStats returns count, distinct ids and sum of ids of the flows table.
func flowStats(t *testing.T, st *store.Store) (n, distinct, sum uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := st.Conn().QueryRow(ctx, "SELECT count(), uniqExact(bytes), sum(bytes) FROM flows").Scan(&n, &distinct, &sum); err != nil {
		t.Fatal(err)
	}
	return
}

func testConfig() Config {
	c := DefaultConfig()
	c.FlushRows = 1000
	c.FlushInterval = 50 * time.Millisecond
	c.QueueRows = 5000
	c.InitialBackoff = 20 * time.Millisecond
	c.MaxBackoff = 100 * time.Millisecond
	c.ReplayInterval = 100 * time.Millisecond
	return c
}

func TestWriteAllTables(t *testing.T) {
	scfg := chtest.Config(t)
	h := newHarness(t, scfg, testConfig())
	h.start(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	const n = 2500
	flows := make([]record.Flow, n)
	for i := range flows {
		flows[i] = testFlow(i, now)
	}
	if err := h.p.Flows().Write(ctx, flows); err != nil {
		t.Fatal(err)
	}
	fw := record.FirewallEvent{Time: now, ReceivedAt: now, Device: "fw1", Vendor: "asa", Format: "asa",
		Action: record.ActionDeny, SrcAddr: netip.MustParseAddr("198.51.100.7"), DstAddr: netip.MustParseAddr("::1"),
		SrcPort: 5000, DstPort: 22, Proto: 6, Rule: "outside_in", Raw: "%ASA-4-106023: Deny tcp"}
	if err := h.p.FirewallEvents().Write(ctx, []record.FirewallEvent{fw}); err != nil {
		t.Fatal(err)
	}
	pr := record.ProbeResult{Time: now, Agent: "a1", SrcRegion: "eu-west", Check: "edge", ProbeType: "icmp",
		Target: "127.0.0.1", TargetAddr: netip.MustParseAddr("127.0.0.1"), TargetRegion: "us-east", Sent: 3,
		Received: 2, LossRatio: 1.0 / 3, RTTsUs: []uint32{1500, 2500}, PhaseNames: []string{"dns"}, PhaseValues: []float64{1.5}}
	if err := h.p.ProbeResults().Write(ctx, []record.ProbeResult{pr}); err != nil {
		t.Fatal(err)
	}
	h.stop(t)

	if c, d, s := flowStats(t, h.st); c != n || d != n || s != n*(n-1)/2 {
		t.Errorf("flows: count %d distinct %d sum %d, want %d %d %d", c, d, s, n, n, n*(n-1)/2)
	}
	var src, dst string
	if err := h.st.Conn().QueryRow(ctx, "SELECT IPv6NumToString(src_addr), IPv6NumToString(dst_addr) FROM firewall_events").Scan(&src, &dst); err != nil {
		t.Fatal(err)
	}
	if src != "::ffff:198.51.100.7" || dst != "::1" {
		t.Errorf("firewall addresses %q %q", src, dst)
	}
	var good uint32
	var rtts []uint32
	if err := h.st.Conn().QueryRow(ctx, "SELECT arrayCount(x -> x <= 2000, rtts_us), rtts_us FROM probe_results").Scan(&good, &rtts); err != nil {
		t.Fatal(err)
	}
	if good != 1 || len(rtts) != 2 {
		t.Errorf("probe_results: good %d rtts %v", good, rtts)
	}
	if got := testutil.ToFloat64(h.p.metrics.written.WithLabelValues("flows")); got != n {
		t.Errorf("rows_written_total{flows} = %v, want %d", got, n)
	}
}

// A lost acknowledgement: the insert lands but the client sees an error.
// The retry must find the batch and not store it twice.
func TestAmbiguousInsertNotDuplicated(t *testing.T) {
	scfg := chtest.Config(t)
	h := newHarness(t, scfg, testConfig())
	var failed atomic.Int32
	real := h.p.flows.insertFn
	h.p.flows.insertFn = func(ctx context.Context, rows []record.Flow, id uint64) error {
		err := real(ctx, rows, id)
		if err == nil && failed.Add(1) <= 3 {
			return &sendError{errors.New("connection reset after send")}
		}
		return err
	}
	h.start(t)
	const n = 3000
	rows := make([]record.Flow, n)
	now := time.Now().UTC()
	for i := range rows {
		rows[i] = testFlow(i, now)
	}
	if err := h.p.Flows().Write(context.Background(), rows); err != nil {
		t.Fatal(err)
	}
	h.stop(t)
	if c, d, _ := flowStats(t, h.st); c != n || d != n {
		t.Fatalf("count %d distinct %d, want %d", c, d, n)
	}
	if got := testutil.ToFloat64(h.p.metrics.deduplicated.WithLabelValues("flows")); got == 0 {
		t.Errorf("rows_deduplicated_total = 0, want > 0 (the retries should have found the batches)")
	}
}

// A row that ClickHouse refuses is dropped and counted; the rows around it
// are stored.
func TestRejectedRowIsolated(t *testing.T) {
	scfg := chtest.Config(t)
	h := newHarness(t, scfg, testConfig())
	const bad = 1234
	real := h.p.flows.insertFn
	h.p.flows.insertFn = func(ctx context.Context, rows []record.Flow, id uint64) error {
		for i := range rows {
			if rows[i].Bytes == bad {
				return &permanentError{fmt.Errorf("row refused")}
			}
		}
		return real(ctx, rows, id)
	}
	h.start(t)
	const n = 2000
	rows := make([]record.Flow, n)
	now := time.Now().UTC()
	for i := range rows {
		rows[i] = testFlow(i, now)
	}
	if err := h.p.Flows().Write(context.Background(), rows); err != nil {
		t.Fatal(err)
	}
	h.stop(t)
	c, d, s := flowStats(t, h.st)
	if c != n-1 || d != n-1 || s != n*(n-1)/2-bad {
		t.Fatalf("count %d distinct %d sum %d; want every row but %d", c, d, s, bad)
	}
	if got := testutil.ToFloat64(h.p.metrics.dropped.WithLabelValues("flows", "rejected")); got != 1 {
		t.Errorf("dropped{rejected} = %v, want 1", got)
	}
}

// A real schema mismatch: the batch is dropped with reason schema and the
// stream goes on once the schema is right again.
func TestSchemaMismatchCountedAndStreamGoesOn(t *testing.T) {
	scfg := chtest.Config(t)
	h := newHarness(t, scfg, testConfig())
	h.start(t)
	ctx := context.Background()
	if err := h.st.Conn().Exec(ctx, "ALTER TABLE flows DROP COLUMN dst_role"); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	if err := h.p.Flows().Write(ctx, []record.Flow{testFlow(1, now), testFlow(2, now)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() bool {
		return testutil.ToFloat64(h.p.metrics.dropped.WithLabelValues("flows", "schema")) == 2
	})
	if err := h.st.Conn().Exec(ctx, "ALTER TABLE flows ADD COLUMN dst_role String AFTER src_role"); err != nil {
		t.Fatal(err)
	}
	if err := h.p.Flows().Write(ctx, []record.Flow{testFlow(3, now)}); err != nil {
		t.Fatal(err)
	}
	h.stop(t)
	if c, _, s := flowStats(t, h.st); c != 1 || s != 3 {
		t.Fatalf("count %d sum %d, want the one row written after the fix", c, s)
	}
}

func waitFor(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
