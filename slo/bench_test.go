package slo

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/meridian-obs/meridian/internal/testutil/chtest"
	"github.com/meridian-obs/meridian/pipeline/store"
)

// BenchmarkEvaluate measures one evaluation (every window of every SLO ×
// group, 30-day SLO windows) over a realistic per-minute table: 100 SLOs ×
// 10 regions = 1,000 series with a row for every minute of 31 days (44.6M
// rows in slo_minutes, 744k in slo_hours), first with no raw data, then
// with MERIDIAN_BENCH_PACKETS (default 100M) probe packets stored in
// probe_results. The evaluator never reads the raw table, so the figure
// must not move with raw volume; it grows with the number of series.
//
//	go test ./slo -run '^$' -bench Evaluate -benchtime 5x
//
// "Cycle" adds the recorder's forward pass (re-aggregating the late
// window of raw data for every SLO, up to warmQueryMax SLOs per query) to
// the evaluation: the whole steady-state cycle.
func BenchmarkEvaluate(b *testing.B) {
	_, cfg := chtest.DB(b)
	cfg.QueryTimeout = 15 * time.Minute // generating the data takes minutes
	ctx := context.Background()
	conn, err := store.Open(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	now := time.Date(2026, 11, 20, 12, 0, 30, 0, time.UTC)
	const nSLO, nRegion = 100, 10
	minutes := int(31 * 24 * time.Hour / time.Minute)
	var all []*Spec
	for i := 0; i < nSLO; i++ {
		s := &Spec{Name: fmt.Sprintf("slo-%03d", i), Objective: 0.999, Window: Duration(30 * 24 * time.Hour),
			SLI: SLI{Probe: &ProbeSLI{LatencyBound: Duration(time.Duration(100+i) * time.Millisecond)}}}
		s.ApplyDefaults()
		all = append(all, s)
	}
	start := floorHour(now).Add(-time.Duration(minutes) * time.Minute)
	t0 := time.Now()
	for _, s := range all {
		q := fmt.Sprintf(`INSERT INTO slo_minutes (slo, spec_hash, grp, minute, good, total, version)
SELECT '%s', toUInt64(%d), concat('region-', toString(intDiv(number, %d))), toDateTime(%d + (number %% %d) * 60), toUInt64(600 - number %% 7), toUInt64(600), toUInt64(1)
FROM system.numbers LIMIT %d`, s.Name, s.Hash(), minutes, start.Unix(), minutes, minutes*nRegion)
		if err := conn.Exec(ctx, q); err != nil {
			b.Fatal(err)
		}
		if err := conn.Exec(ctx, fmt.Sprintf(`INSERT INTO slo_hours (slo, spec_hash, grp, hour, good, total, version)
SELECT slo, spec_hash, grp, toDateTime(intDiv(toUInt32(minute), 3600) * 3600) AS h, sum(good), sum(total), toUInt64(1)
FROM slo_minutes WHERE slo = '%s' GROUP BY slo, spec_hash, grp, h`, s.Name)); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("per-minute table: %d rows written in %s", nSLO*nRegion*minutes, time.Since(t0).Round(time.Second))
	clock := &fakeClock{now}
	e, _ := newEngine(b, conn, clock, all...)
	// The recorder is up to date: no back-fill during the benchmark.
	for _, s := range all {
		e.rec[recKey{s.Name, s.Hash()}] = &recState{coveredFrom: start, recordedTo: floorMinute(now).Add(time.Minute)}
	}
	e.recLoaded = true
	// mode: "cold" loads everything from ClickHouse (engine start), "warm"
	// is a steady-state cycle (late-window refresh + sums in memory),
	// "cycle" adds the recorder's forward pass over raw data.
	run := func(name string, specs []*Spec, mode string) {
		series := len(specs) * nRegion
		b.Run(name, func(b *testing.B) {
			if mode != "cold" {
				if _, err := e.evaluateMem(ctx, conn, specs, now); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if mode == "cold" {
					e.mem = nil
				}
				var err error
				if mode == "cycle" {
					err = e.record(ctx, conn, specs, now)
				}
				if err == nil {
					var st []Status
					st, err = e.evaluateMem(ctx, conn, specs, now)
					if err == nil && len(st) != series {
						err = fmt.Errorf("%d statuses, want %d", len(st), series)
					}
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(series), "series")
			b.ReportMetric(b.Elapsed().Seconds()/float64(b.N)*1000, "ms/cycle")
		})
	}
	run("raw=0/series=1000/cold", all, "cold")
	run("raw=0/series=100/warm", all[:10], "warm")
	run("raw=0/series=1000/warm", all, "warm")
	run("raw=0/series=1000/cycle", all, "cycle")
	packets := 100_000_000
	if v := os.Getenv("MERIDIAN_BENCH_PACKETS"); v != "" {
		packets, _ = strconv.Atoi(v)
	}
	// Raw probe rounds of 100 packets over the last 30 days, 10 regions.
	rows := packets / 100
	t0 = time.Now()
	span := int64(30 * 24 * time.Hour / time.Second)
	const chunk = 100_000
	for off := 0; off < rows; off += chunk {
		if err := conn.Exec(ctx, fmt.Sprintf(`INSERT INTO probe_results (time, agent, target_region, check_name, probe_type, sent, received, rtts_us)
SELECT toDateTime(%d + intDiv(n * %d, %d)), 'a', concat('region-', toString(n %% 10)), 'edge', 'icmp', 100, 100,
	arrayMap(i -> toUInt32(20000 + (n * 7919 + i * 104729) %% 150000), range(100))
FROM (SELECT number + %d AS n FROM system.numbers LIMIT %d)`, now.Unix()-span, span, rows, off, min(chunk, rows-off))); err != nil {
			b.Fatal(err)
		}
	}
	var stored uint64
	if err := conn.QueryRow(ctx, "SELECT sum(toUInt64(sent)) FROM probe_results").Scan(&stored); err != nil {
		b.Fatal(err)
	}
	b.Logf("probe_results: %d packets stored in %s", stored, time.Since(t0).Round(time.Second))
	run(fmt.Sprintf("raw=%dM/series=1000/cold", stored/1_000_000), all, "cold")
	run(fmt.Sprintf("raw=%dM/series=100/warm", stored/1_000_000), all[:10], "warm")
	run(fmt.Sprintf("raw=%dM/series=1000/warm", stored/1_000_000), all, "warm")
	run(fmt.Sprintf("raw=%dM/series=100/cycle", stored/1_000_000), all[:10], "cycle")
	run(fmt.Sprintf("raw=%dM/series=1000/cycle", stored/1_000_000), all, "cycle")
}
