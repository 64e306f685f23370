package store

// Tables of the SLO engine (package slo).
//
//   - slo_minutes: good and total counts per SLO, spec hash, group and
//     minute, written by the SLO recorder which re-aggregates a trailing
//     window of raw data every cycle. Each write carries a version (the
//     recording time in ns); ReplacingMergeTree keeps the latest version of
//     a minute, and readers use FINAL so that a minute not yet merged is
//     never counted twice.
//   - slo_hours: the same counts per hour, re-aggregated from slo_minutes by
//     the recorder; the evaluator reads whole hours from it for long windows
//     so that a 30-day evaluation reads ~720 rows per series, not 43,200.
//   - slo_recorder_state: per SLO and spec hash, how far the recorder got
//     (back-fill start, recorded-to), so a restart resumes without gaps.
//   - slo_status: status history written by the evaluator.
func init() {
	Register(
		Migration{
			Version: 3001,
			Name:    "slo_minutes",
			Statements: []string{`CREATE TABLE IF NOT EXISTS slo_minutes (
	slo String,
	spec_hash UInt64,
	grp String,
	minute DateTime,
	good UInt64,
	total UInt64,
	version UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMMDD(minute)
ORDER BY (slo, spec_hash, grp, minute)`},
			Partitioned: []string{"slo_minutes"},
		},
		Migration{
			Version: 3002,
			Name:    "slo_hours",
			Statements: []string{`CREATE TABLE IF NOT EXISTS slo_hours (
	slo String,
	spec_hash UInt64,
	grp String,
	hour DateTime,
	good UInt64,
	total UInt64,
	version UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMMDD(hour)
ORDER BY (slo, spec_hash, grp, hour)`},
			Partitioned: []string{"slo_hours"},
		},
		Migration{
			Version: 3003,
			Name:    "slo_recorder_state",
			Statements: []string{`CREATE TABLE IF NOT EXISTS slo_recorder_state (
	slo String,
	spec_hash UInt64,
	covered_from DateTime,
	recorded_to DateTime,
	version UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY (slo, spec_hash)`},
		},
		Migration{
			Version: 3004,
			Name:    "slo_status",
			Statements: []string{`CREATE TABLE IF NOT EXISTS slo_status (
	time DateTime,
	slo String,
	grp String,
	objective Float64,
	has_data UInt8,
	stale UInt8,
	good UInt64,
	total UInt64,
	sli Float64,
	budget_remaining Float64,
	burn_windows Array(String),
	burn_rates Array(Float64),
	burn_has_data Array(UInt8),
	firing Array(String)
) ENGINE = MergeTree
PARTITION BY toYYYYMMDD(time)
ORDER BY (slo, grp, time)`},
			Partitioned: []string{"slo_status"},
		},
	)
}
