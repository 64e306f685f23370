package store

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Rollups the dashboard reads (package web): probe results per 5 minutes,
// per hour and per day, filled by materialized views from probe_results.
// Each row sums up one (agent source, target) series over its bucket: the
// round count, the packets sent and received, a histogram of the per-round
// median RTT over the answered rounds (the "smoke" band), and aggregate
// states of min/max RTT, mean jitter and the last round. Readers add the
// counters and histograms and merge the states (-Merge) over any coarser
// step, so a 30-day chart reads ~30 rows per series instead of every round.
//
// The band is a sparse histogram (see ProbeHistBins): only the bins a
// series' rounds fell in are stored. The tables are partitioned by day, so
// a time range only opens its own days. Within a day, the 5-minute table is
// sorted by time first (short ranges over every series: the overview, the
// paths table); the hourly and daily tables are sorted by source region and
// target first with small granules (long ranges of one path: the smoke
// chart over 7 or 30 days reads ~1 granule a day, and a region filter reads
// only the granules of its paths once its columns are read as PREWHERE).
// Measured on 18.16 with web/loadtest (docs/dashboard.md).
//
// Migration 6004 replaced the first definitions (AggregatingMergeTree with a
// dense histogram, sumForEach over 96 UInt64 bins, ~770 bytes a row): it
// drops the three rollups, creates them again as defined below, fills them
// from probe_results a day at a time (the 5-minute one with its last two
// days) and only then creates their views (on a new database, it recreates
// the empty tables 6001–6003 just made). 6005 builds the region rollup the
// same way. Migrations run before the pipeline writes, so nothing is
// counted twice or missed between a rebuild and its view.
func init() {
	Register(
		Migration{
			Version:     6001,
			Name:        "probe_rollup_5m",
			Statements:  probeRollup(rollup5m),
			Partitioned: []string{"probe_rollup_5m"},
		},
		Migration{
			Version:     6002,
			Name:        "probe_rollup_1h",
			Statements:  probeRollup(rollup1h),
			Partitioned: []string{"probe_rollup_1h"},
		},
		Migration{
			Version:     6003,
			Name:        "probe_rollup_1d",
			Statements:  probeRollup(rollup1d),
			Partitioned: []string{"probe_rollup_1d"},
		},
		Migration{
			Version: 6004,
			Name:    "probe_rollups_summing_sparse_histogram",
			Statements: rollupStatements(
				dropRollup(rollup5m), dropRollup(rollup1h), dropRollup(rollup1d),
				[]string{probeRollupTable(rollup5m.name, rollup5m.key, rollup5m.granularity),
					probeRollupTable(rollup1h.name, rollup1h.key, rollup1h.granularity),
					probeRollupTable(rollup1d.name, rollup1d.key, rollup1d.granularity)}),
			// The new tables are filled from probe_results (the history
			// the dashboard had), then their views are created.
			Run: func(ctx context.Context, conn driver.Conn) error {
				for _, r := range []rollupDef{rollup5m, rollup1h, rollup1d} {
					if err := rebuildRollup(ctx, conn, r.rebuild()); err != nil {
						return err
					}
					if err := conn.Exec(ctx, probeRollupView(r.name, r.bucket)); err != nil {
						return fmt.Errorf("create %s_mv: %w", r.name, err)
					}
				}
				return nil
			},
		},
		Migration{
			Version: 6005,
			Name:    "probe_rollup_region_1h",
			Statements: []string{
				"DROP TABLE IF EXISTS probe_rollup_region_1h_mv",
				"DROP TABLE IF EXISTS probe_rollup_region_1h",
				probeRegionRollupTable,
			},
			Run: func(ctx context.Context, conn driver.Conn) error {
				if err := rebuildRollup(ctx, conn, ProbeRollup{"probe_rollup_region_1h", ProbeRegionRollupColumns, ProbeRegionRollupSelect}); err != nil {
					return err
				}
				return conn.Exec(ctx, `CREATE MATERIALIZED VIEW IF NOT EXISTS probe_rollup_region_1h_mv TO probe_rollup_region_1h AS `+
					ProbeRegionRollupSelect(""))
			},
			Partitioned: []string{"probe_rollup_region_1h"},
		},
	)
}

// ProbeRollup is one probe rollup and how to rebuild it from probe_results:
// INSERT INTO Table (Columns) Select(where), a day at a time.
type ProbeRollup struct {
	Table, Columns string
	Select         func(where string) string
}

// ProbeRollups lists every probe rollup (docs/operations.md).
var ProbeRollups = []ProbeRollup{
	rollup5m.rebuild(), rollup1h.rebuild(), rollup1d.rebuild(),
	{"probe_rollup_region_1h", ProbeRegionRollupColumns, ProbeRegionRollupSelect},
}

func (r rollupDef) rebuild() ProbeRollup {
	return ProbeRollup{r.name, ProbeRollupColumns, func(where string) string { return ProbeRollupSelect(r.bucket, where) }}
}

type rollupDef struct {
	name, bucket, key string
	granularity       int
}

var (
	rollup5m = rollupDef{"probe_rollup_5m", "toStartOfFiveMinute(time)", "t, src_region, target_region, target", 1024}
	rollup1h = rollupDef{"probe_rollup_1h", "toStartOfHour(time)", "src_region, target, t, target_region", 256}
	rollup1d = rollupDef{"probe_rollup_1d", "toStartOfDay(time)", "src_region, target, t, target_region", 256}
)

func probeRollup(r rollupDef) []string {
	return []string{probeRollupTable(r.name, r.key, r.granularity), probeRollupView(r.name, r.bucket)}
}

func dropRollup(r rollupDef) []string {
	return []string{"DROP TABLE IF EXISTS " + r.name + "_mv", "DROP TABLE IF EXISTS " + r.name}
}

// rollup5mHistory is how much history the 5-minute rollup is rebuilt
// with: it serves ranges up to 12 hours.
const rollup5mHistory = 2 * 24 * time.Hour

// rebuildRollup fills an empty rollup from probe_results, one day (UTC) at
// a time so that memory stays bounded whatever the history. Migrations run
// before the pipeline writes, so no row arrives between the rebuild and
// the creation of the rollup's view.
func rebuildRollup(ctx context.Context, conn driver.Conn, rb ProbeRollup) error {
	var n uint64
	var lo, hi time.Time
	if err := conn.QueryRow(ctx, "SELECT count(), min(time), max(time) FROM probe_results").Scan(&n, &lo, &hi); err != nil {
		return fmt.Errorf("rebuild %s: %w", rb.Table, err)
	}
	if n == 0 {
		return nil
	}
	if rb.Table == rollup5m.name {
		if since := hi.Add(-rollup5mHistory); lo.Before(since) {
			lo = since
		}
	}
	for day := lo.UTC().Truncate(24 * time.Hour); !day.After(hi); day = day.Add(24 * time.Hour) {
		where := fmt.Sprintf("time >= toDateTime(%d) AND time < toDateTime(%d)", day.Unix(), day.Add(24*time.Hour).Unix())
		if err := conn.Exec(ctx, "INSERT INTO "+rb.Table+" ("+rb.Columns+") "+rb.Select(where)); err != nil {
			return fmt.Errorf("rebuild %s for %s: %w", rb.Table, day.Format("2006-01-02"), err)
		}
	}
	return nil
}

func rollupStatements(ss ...[]string) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s...)
	}
	return out
}

// The smoke band: a histogram of the per-round median RTT over log-spaced
// bins — bin i holds [ProbeHistBase·ProbeHistRatio^i, ·ProbeHistRatio)
// milliseconds (the first and last bins are open-ended): 96 bins from 0.05 ms
// to ~20 s, each 14.4 % wide. Quantiles are read from the merged histogram
// (package web), within half a bin (±7 %).
//
// The histogram is sparse, a map from bin number to count in the nested
// columns rtt_histMap.bin (UInt8) and rtt_histMap.n (UInt64): only the bins
// a series' rounds fell in are stored, and one series rarely spreads over
// more than a few bins in an hour or a day. The tables are
// SummingMergeTree, which adds such maps by key when it merges rows (the
// name must end in Map) and adds the plain counters (rounds, packets); the
// columns of AggregateFunction type are merged as in AggregatingMergeTree.
// Readers add maps with sumMap over the plain arrays. Measured on 18.16:
// a dense array of 96 UInt64 (sumForEach, 768 bytes a row) made reading the
// histogram dominate every dashboard query, and sumMap aggregate states
// were 4× slower to read than these plain arrays.
const (
	ProbeHistBins  = 96
	ProbeHistBase  = 0.05
	ProbeHistRatio = 1.144
)

// histBin is the bin of rtt_p50_ms.
var histBin = `toUInt8(least(` + strconv.Itoa(ProbeHistBins-1) + `, greatest(0, floor(log(rtt_p50_ms / ` +
	strconv.FormatFloat(ProbeHistBase, 'f', -1, 64) + `) / log(` + strconv.FormatFloat(ProbeHistRatio, 'f', -1, 64) + `)))))`

// ProbeRollupColumns are the columns of a probe rollup in the order
// ProbeRollupSelect gives them: INSERT INTO rollup (ProbeRollupColumns)
// ProbeRollupSelect(…).
const ProbeRollupColumns = "t, src_region, src_site, target, target_region, target_site, check_name, probe_type, " +
	"n_rounds, n_sent, n_received, `rtt_histMap.bin`, `rtt_histMap.n`, rtt_min, rtt_max, jitter, last_seen"

// probeRollupMeasures are the columns every probe rollup sums or merges,
// and probeRollupAggregates the expressions over probe_results that fill
// them. A round without an answer counts 0 in its bin (dropped when
// merged).
const probeRollupMeasures = `	n_rounds UInt64,
	n_sent UInt64,
	n_received UInt64,
	rtt_histMap Nested(bin UInt8, n UInt64),
	rtt_min AggregateFunction(minIf, Float64, UInt8),
	rtt_max AggregateFunction(maxIf, Float64, UInt8),
	jitter AggregateFunction(avgIf, Float64, UInt8),
	last_seen AggregateFunction(max, DateTime)
`

var probeRollupAggregates = `	count() AS n_rounds,
	sum(toUInt64(sent)) AS n_sent,
	sum(toUInt64(received)) AS n_received,
	tupleElement(sumMap([` + histBin + `], [toUInt64(received > 0)]) AS hist, 1) AS ` + "`rtt_histMap.bin`" + `,
	tupleElement(hist, 2) AS ` + "`rtt_histMap.n`" + `,
	minIfState(rtt_min_ms, received > 0) AS rtt_min,
	maxIfState(rtt_max_ms, received > 0) AS rtt_max,
	avgIfState(jitter_ms, received > 1) AS jitter,
	maxState(time) AS last_seen`

func probeRollupTable(name, key string, granularity int) string {
	return `CREATE TABLE IF NOT EXISTS ` + name + ` (
	t DateTime,
	src_region String,
	src_site String,
	target String,
	target_region String,
	target_site String,
	check_name String,
	probe_type String,
` + probeRollupMeasures + `) ENGINE = SummingMergeTree
PARTITION BY toYYYYMMDD(t)
ORDER BY (` + key + `, src_site, target_site, check_name, probe_type)
SETTINGS index_granularity = ` + strconv.Itoa(granularity)
}

func probeRollupView(name, bucket string) string {
	return `CREATE MATERIALIZED VIEW IF NOT EXISTS ` + name + `_mv TO ` + name + ` AS ` + ProbeRollupSelect(bucket, "")
}

// ProbeRollupSelect is the query of the probe rollups' materialized views
// over probe_results, bucketed by bucket (see ProbeRollups); INSERT …
// SELECT with it rebuilds a rollup, a part at a time with a where condition
// over probe_results (docs/operations.md).
func ProbeRollupSelect(bucket, where string) string {
	if where != "" {
		where = "\nWHERE " + where
	}
	return `SELECT
	` + bucket + ` AS t,
	src_region, src_site, target, target_region, target_site, check_name, probe_type,
` + probeRollupAggregates + `
FROM probe_results` + where + `
GROUP BY t, src_region, src_site, target, target_region, target_site, check_name, probe_type`
}

// probe_rollup_region_1h (migration 6005) serves the region view, the series
// of every path from or to one region: a round of a path from region A to a
// target in region B counts once under A and once under B (once when A is
// B), per hour. The path rollups keep paths apart and are sorted by source
// region, so a region filter over a week read ~40,000 rows; this table holds
// one row per region and hour.
const probeRegionRollupTable = `CREATE TABLE IF NOT EXISTS probe_rollup_region_1h (
	t DateTime,
	region String,
` + probeRollupMeasures + `) ENGINE = SummingMergeTree
PARTITION BY toYYYYMMDD(t)
ORDER BY (region, t)
SETTINGS index_granularity = 256`

// ProbeRegionRollupColumns are the columns ProbeRegionRollupSelect gives.
const ProbeRegionRollupColumns = "t, region, n_rounds, n_sent, n_received, `rtt_histMap.bin`, `rtt_histMap.n`, " +
	"rtt_min, rtt_max, jitter, last_seen"

// ProbeRegionRollupSelect is the query of probe_rollup_region_1h's
// materialized view (see ProbeRollupSelect).
func ProbeRegionRollupSelect(where string) string {
	if where != "" {
		where = "\nWHERE " + where
	}
	return `SELECT
	toStartOfHour(time) AS t,
	region,
` + probeRollupAggregates + `
FROM probe_results
ARRAY JOIN arrayDistinct([src_region, target_region]) AS region` + where + `
GROUP BY t, region`
}
