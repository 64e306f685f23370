package pipeline

import (
	"context"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/meridian-obs/meridian/internal/testutil/chtest"
	"github.com/meridian-obs/meridian/pipeline/chlocal"
	"github.com/meridian-obs/meridian/pipeline/record"
	"github.com/meridian-obs/meridian/pipeline/store"
)

// While rows are being written, ClickHouse is killed; writing goes on (into
// the spool); ClickHouse is started again; every row arrives exactly once.
func TestOutageEveryRowExactlyOnce(t *testing.T) {
	if _, err := chlocal.FindBinary(""); err != nil {
		chtest.Unavailable(t, "%v", err)
	}
	dir := t.TempDir()
	ccfg := chlocal.DefaultConfig()
	ccfg.Dir = dir
	ccfg.TCPPort, ccfg.HTTPPort = 0, 0
	ccfg.MaxMemoryUsage = 1 << 30
	srv := chlocal.New(ccfg, nil)
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop(context.Background()) })
	// Restart on the same ports and data.
	ccfg.TCPPort = portOf(t, srv.Addr)
	ccfg.HTTPPort = 0

	scfg := store.DefaultConfig()
	scfg.Addr = []string{srv.Addr}
	scfg.Database = "outage"
	scfg.DialTimeout = 500 * time.Millisecond
	scfg.QueryTimeout = 5 * time.Second
	pcfg := testConfig()
	pcfg.FlushRows = 500
	h := newHarness(t, scfg, pcfg)
	h.start(t)

	const n = 30_000
	const chunk = 100
	now := time.Now().UTC()
	ctx := context.Background()
	written := make(chan int, n/chunk)
	go func() {
		defer close(written)
		for i := 0; i < n; i += chunk {
			rows := make([]record.Flow, chunk)
			for j := range rows {
				rows[j] = testFlow(i+j, now)
			}
			if err := h.p.Flows().Write(ctx, rows); err != nil {
				t.Errorf("write: %v", err)
				return
			}
			written <- i + chunk
			time.Sleep(2 * time.Millisecond)
		}
	}()
	waitRows := func(k int) {
		for w := range written {
			if w >= k {
				return
			}
		}
	}
	waitRows(n / 4)
	srv.Kill()
	t.Log("clickhouse killed")
	waitRows(n / 2)
	// Rows go on being accepted while ClickHouse is down; wait until some
	// reached the spool.
	waitFor(t, 20*time.Second, func() bool { return testutil.ToFloat64(h.p.metrics.spooled.WithLabelValues("flows")) > 0 })
	srv2 := chlocal.New(ccfg, nil)
	if err := srv2.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv2.Stop(context.Background()) })
	t.Log("clickhouse restarted")
	waitRows(n)
	// Every row is written once the spool has drained.
	waitFor(t, 60*time.Second, func() bool {
		_, batches := h.p.SpoolStats()
		return batches == 0 && testutil.ToFloat64(h.p.metrics.written.WithLabelValues("flows")) >= n
	})
	h.stop(t)

	c, d, s := flowStats(t, h.st)
	if c != n || d != n || s != uint64(n)*(n-1)/2 {
		t.Fatalf("after the outage: count %d distinct %d sum %d; want %d %d %d", c, d, s, n, n, uint64(n)*(n-1)/2)
	}
	spooled := testutil.ToFloat64(h.p.metrics.spooled.WithLabelValues("flows"))
	replayed := testutil.ToFloat64(h.p.metrics.replayed.WithLabelValues("flows"))
	dedup := testutil.ToFloat64(h.p.metrics.deduplicated.WithLabelValues("flows"))
	t.Logf("spooled %v rows, replayed %v, found already stored %v", spooled, replayed, dedup)
	if spooled == 0 || replayed == 0 {
		t.Errorf("the outage should have sent rows through the spool (spooled %v, replayed %v)", spooled, replayed)
	}
	for _, reason := range []string{"spool_full", "too_large", "rejected", "schema", "spool_corrupt", "spool_error"} {
		if v := testutil.ToFloat64(h.p.metrics.dropped.WithLabelValues("flows", reason)); v != 0 {
			t.Errorf("dropped{%s} = %v", reason, v)
		}
	}
}

// The spool is bounded: when full, the oldest batch is dropped and counted,
// and what is left is replayed at the next start of the pipeline.
func TestSpoolBoundAndRestart(t *testing.T) {
	scfg := chtest.Config(t)
	pcfg := testConfig()
	pcfg.FlushRows = 1000
	pcfg.SpoolMaxBytes = 1 << 20
	spoolDir := t.TempDir()
	pcfg.SpoolDir = spoolDir

	down := &fakeStore{}
	p, err := New(pcfg, Deps{Store: down})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	const n = 20_000 // about 2.6 MB of gob: more than the spool holds
	rows := make([]record.Flow, n)
	for i := range rows {
		rows[i] = testFlow(i, now)
	}
	if err := p.Flows().Write(context.Background(), rows); err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	dropped := testutil.ToFloat64(p.metrics.dropped.WithLabelValues("flows", "spool_full"))
	spoolBytes, batches := p.SpoolStats()
	if dropped == 0 || spoolBytes > pcfg.SpoolMaxBytes || batches == 0 {
		t.Fatalf("spool: dropped %v, %d bytes in %d batches; want drops and ≤ %d bytes", dropped, spoolBytes, batches, pcfg.SpoolMaxBytes)
	}
	kept := n - int(dropped)

	// A new pipeline on the same spool, with ClickHouse up, replays it.
	h := newHarness(t, scfg, pcfg)
	h.start(t)
	waitFor(t, 30*time.Second, func() bool { _, b := h.p.SpoolStats(); return b == 0 })
	h.stop(t)
	c, d, s := flowStats(t, h.st)
	if c != uint64(kept) || d != uint64(kept) {
		t.Fatalf("replayed %d rows (%d distinct), want the %d that were kept", c, d, kept)
	}
	// The oldest were dropped: the kept rows are the newest ids.
	wantSum := uint64(0)
	for i := n - kept; i < n; i++ {
		wantSum += uint64(i)
	}
	if s != wantSum {
		t.Errorf("sum of kept ids %d, want %d (the newest rows)", s, wantSum)
	}
	if ents, _ := os.ReadDir(spoolDir + "/flows"); len(ents) != 0 {
		t.Errorf("spool directory not empty: %d files", len(ents))
	}
}

// fakeStore is a ClickHouse that is down.
type fakeStore struct{}

func (*fakeStore) Conn() driver.Conn { return nil }
func (*fakeStore) Ready() bool       { return false }

func portOf(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return n
}
