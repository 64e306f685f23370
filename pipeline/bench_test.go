package pipeline

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/meridian-obs/meridian/internal/testutil/chtest"
	"github.com/meridian-obs/meridian/pipeline/record"
	"github.com/meridian-obs/meridian/pipeline/store"
)

// The benchmarks compare the pipeline (queue, batching, retries, spool and
// metrics all on) with raw clickhouse-go batch inserts of the same rows from
// one goroutine, into the same real ClickHouse. Run: make bench.

const benchBatch = 50_000

func benchFlows(n int) []record.Flow {
	now := time.Now().UTC()
	rows := make([]record.Flow, n)
	for i := range rows {
		rows[i] = testFlow(i, now)
		rows[i].InIfName, rows[i].OutIfName = "xe-0/0/1", "xe-0/0/2"
		rows[i].DstAddr = netip.AddrFrom4([4]byte{192, 0, 2, byte(i)})
	}
	return rows
}

func benchProbes(n int) []record.ProbeResult {
	now := time.Now().UTC()
	rows := make([]record.ProbeResult, n)
	for i := range rows {
		rows[i] = record.ProbeResult{Time: now, Agent: "agent-1", SrcRegion: "eu-west", SrcSite: "par1", Check: "edge-icmp",
			ProbeType: "icmp", Target: "127.0.0.1", TargetAddr: netip.MustParseAddr("127.0.0.1"), TargetRegion: "us-east",
			Sent: 5, Received: 5, RTTMinMs: 1, RTTAvgMs: 1.2, RTTMaxMs: 1.5, RTTP50Ms: 1.2, RTTP95Ms: 1.5, RTTP99Ms: 1.5,
			JitterMs: 0.1, MOS: 4.4, RTTsUs: []uint32{1000, 1100, 1200, 1300, 1500}}
	}
	return rows
}

func benchStore(b *testing.B) *store.Store {
	scfg := chtest.Config(b)
	st, err := store.New(scfg, store.Deps{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	if err := st.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Stop(context.Background()) })
	if !st.Ready() {
		chtest.Unavailable(b, "clickhouse not ready")
	}
	// MERIDIAN_BENCH_NO_MV=1 drops the rollups' materialized views, to see
	// what the inserts cost without the server-side aggregation.
	if os.Getenv("MERIDIAN_BENCH_NO_MV") == "1" {
		ctx := context.Background()
		rows, err := st.Conn().Query(ctx, "SELECT name FROM system.tables WHERE database = currentDatabase() AND engine = 'MaterializedView'")
		if err != nil {
			b.Fatal(err)
		}
		var views []string
		for rows.Next() {
			var v string
			rows.Scan(&v)
			views = append(views, v)
		}
		rows.Close()
		for _, v := range views {
			if err := st.Conn().Exec(ctx, "DROP TABLE "+v); err != nil {
				b.Fatal(err)
			}
		}
	}
	return st
}

// rawInsert inserts with the table's own append (column-wise where the
// table has one), or row-wise with rowWise, to show what the column-wise
// append saves.
func rawInsert[T any](b *testing.B, st *store.Store, tbl *Table[T], rows []T, rowWise bool) {
	ctx := context.Background()
	b.ResetTimer()
	start := time.Now()
	total := 0
	for i := 0; i < b.N; i++ {
		batch, err := st.Conn().PrepareBatch(ctx, tbl.insertSQL())
		if err != nil {
			b.Fatal(err)
		}
		if tbl.AppendRows != nil && !rowWise {
			if err := tbl.AppendRows(batch, rows, 1); err != nil {
				b.Fatal(err)
			}
		} else {
			for j := range rows {
				if err := tbl.Append(batch, &rows[j], 1); err != nil {
					b.Fatal(err)
				}
			}
		}
		if err := batch.Send(); err != nil {
			b.Fatal(err)
		}
		total += len(rows)
	}
	b.ReportMetric(float64(total)/time.Since(start).Seconds(), "rows/s")
}

func pipelineInsert[T any](b *testing.B, st *store.Store, pick func(*Pipeline) (record.Sink[T], string), rows []T) {
	cfg := DefaultConfig()
	cfg.FlushRows = benchBatch
	cfg.QueueRows = 4 * benchBatch
	cfg.SpoolDir = b.TempDir()
	p, err := New(cfg, Deps{Store: st, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	sink, table := pick(p)
	written := p.metrics.written.WithLabelValues(table)
	ctx := context.Background()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		// Producers hand over rows in chunks, as collectors do per packet
		// burst.
		for off := 0; off < len(rows); off += 1000 {
			if err := sink.Write(ctx, rows[off:min(off+1000, len(rows))]); err != nil {
				b.Fatal(err)
			}
		}
	}
	want := float64(b.N * len(rows))
	for testutil.ToFloat64(written) < want {
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(want/elapsed.Seconds(), "rows/s")
	if err := p.Stop(context.Background()); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkFlowsRaw(b *testing.B) {
	rawInsert(b, benchStore(b), FlowsTable, benchFlows(benchBatch), false)
}

func BenchmarkFlowsRawRowWise(b *testing.B) {
	rawInsert(b, benchStore(b), FlowsTable, benchFlows(benchBatch), true)
}

func BenchmarkFlowsPipeline(b *testing.B) {
	pipelineInsert(b, benchStore(b), func(p *Pipeline) (record.Sink[record.Flow], string) { return p.Flows(), "flows" },
		benchFlows(benchBatch))
}

func BenchmarkProbeResultsRaw(b *testing.B) {
	rawInsert(b, benchStore(b), ProbeResultsTable, benchProbes(benchBatch), true)
}

func BenchmarkProbeResultsPipeline(b *testing.B) {
	pipelineInsert(b, benchStore(b), func(p *Pipeline) (record.Sink[record.ProbeResult], string) {
		return p.ProbeResults(), "probe_results"
	}, benchProbes(benchBatch))
}
