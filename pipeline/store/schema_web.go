package store

import "strconv"

// Rollups the dashboard reads (package web): probe results per 5 minutes and
// per hour, filled by materialized views from probe_results. Each row holds
// aggregate states per (agent source, target) series: the round count, the
// packets sent and received, a histogram of the per-round median RTT over the
// answered rounds (the "smoke" band, as a histogram), min/max RTT and mean jitter. Readers
// merge the states (-Merge) over any coarser step, so a 30-day chart reads
// ~720 rows per series instead of every round.
//
// The band is a histogram (see ProbeHistBins). The tables are partitioned by day, so a time range only opens its
// own days. Within a day, the 5-minute table is sorted by time first (short
// ranges over every series: the overview, the paths table), the hourly table
// by source region and target first with small granules (long ranges of one
// path: the smoke chart over 7 or 30 days reads ~1 granule a day); the daily
// table serves whole-range aggregates of every path over days. Measured on
// 18.16 with web/loadtest.
func init() {
	Register(
		Migration{
			Version: 6001,
			Name:    "probe_rollup_5m",
			Statements: []string{
				probeRollupTable("probe_rollup_5m", "t, src_region, target_region, target", 8192),
				probeRollupView("probe_rollup_5m", "toStartOfFiveMinute(time)"),
			},
			Partitioned: []string{"probe_rollup_5m"},
		},
		Migration{
			Version: 6002,
			Name:    "probe_rollup_1h",
			Statements: []string{
				probeRollupTable("probe_rollup_1h", "src_region, target, t, target_region", 256),
				probeRollupView("probe_rollup_1h", "toStartOfHour(time)"),
			},
			Partitioned: []string{"probe_rollup_1h"},
		},
		Migration{
			Version: 6003,
			Name:    "probe_rollup_1d",
			Statements: []string{
				probeRollupTable("probe_rollup_1d", "t, src_region, target_region, target", 256),
				probeRollupView("probe_rollup_1d", "toStartOfDay(time)"),
			},
			Partitioned: []string{"probe_rollup_1d"},
		},
	)
}

// The smoke band: a histogram of the per-round median RTT over log-spaced
// bins — bin i holds [ProbeHistBase·ProbeHistRatio^i, ·ProbeHistRatio)
// milliseconds (the first and last bins are open-ended): 96 bins from 0.05 ms
// to ~20 s, each 14.4 % wide. Merging histograms is an addition of arrays
// (sumForEach), far cheaper than merging quantile sketches: a 30-day
// aggregate of 1,000 paths merges 30,000 arrays in a few milliseconds where
// t-digest states took seconds on 18.16. Quantiles are read from the merged
// histogram (package web), within half a bin (±7 %).
const (
	ProbeHistBins  = 96
	ProbeHistBase  = 0.05
	ProbeHistRatio = 1.144
)

// histBin is the bin of rtt_p50_ms. (The one-hot array is built with
// arrayResize, not arrayMap: 18.16 does not see source columns inside a
// lambda of a materialized view.)
var histBin = `toUInt32(least(` + strconv.Itoa(ProbeHistBins-1) + `, greatest(0, floor(log(rtt_p50_ms / ` +
	strconv.FormatFloat(ProbeHistBase, 'f', -1, 64) + `) / log(` + strconv.FormatFloat(ProbeHistRatio, 'f', -1, 64) + `)))))`

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
	n_rounds AggregateFunction(count),
	n_sent AggregateFunction(sum, UInt64),
	n_received AggregateFunction(sum, UInt64),
	rtt_hist AggregateFunction(sumForEach, Array(UInt64)),
	rtt_min AggregateFunction(minIf, Float64, UInt8),
	rtt_max AggregateFunction(maxIf, Float64, UInt8),
	jitter AggregateFunction(avgIf, Float64, UInt8),
	last_seen AggregateFunction(max, DateTime)
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMMDD(t)
ORDER BY (` + key + `, src_site, target_site, check_name, probe_type)
SETTINGS index_granularity = ` + strconv.Itoa(granularity)
}

func probeRollupView(name, bucket string) string {
	return `CREATE MATERIALIZED VIEW IF NOT EXISTS ` + name + `_mv TO ` + name + ` AS ` + ProbeRollupSelect(bucket, "")
}

// ProbeRollupSelect is the query of the probe rollups' materialized views
// over probe_results, bucketed by bucket (toStartOfFiveMinute(time) or
// toStartOfHour(time)); INSERT … SELECT with it rebuilds a rollup, a part
// at a time with a where condition over probe_results.
func ProbeRollupSelect(bucket, where string) string {
	if where != "" {
		where = "\nWHERE " + where
	}
	return `SELECT
	` + bucket + ` AS t,
	src_region, src_site, target, target_region, target_site, check_name, probe_type,
	countState() AS n_rounds,
	sumState(toUInt64(sent)) AS n_sent,
	sumState(toUInt64(received)) AS n_received,
	sumForEachState(arrayConcat(arrayResize(emptyArrayUInt64(), ` + histBin + `), [toUInt64(received > 0)],
		arrayResize(emptyArrayUInt64(), ` + strconv.Itoa(ProbeHistBins-1) + ` - ` + histBin + `))) AS rtt_hist,
	minIfState(rtt_min_ms, received > 0) AS rtt_min,
	maxIfState(rtt_max_ms, received > 0) AS rtt_max,
	avgIfState(jitter_ms, received > 1) AS jitter,
	maxState(time) AS last_seen
FROM probe_results` + where + `
GROUP BY t, src_region, src_site, target, target_region, target_site, check_name, probe_type`
}
