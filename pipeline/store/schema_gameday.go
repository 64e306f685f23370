package store

// Game days (owner: internal/gameday). gamedays holds one row per drill with
// its measured figures (seconds; -1 when the step never happened);
// gameday_events is the incident timeline of each drill. Times are DateTime
// for partitions plus milliseconds since the epoch (at_ms) because 18.16 has
// no DateTime64. Game days are small and kept (no retention), so MTTD and
// MTTR can be followed over time.
func init() {
	Register(
		Migration{
			Version: 5001,
			Name:    "gamedays",
			Statements: []string{`CREATE TABLE IF NOT EXISTS gamedays (
	id String,
	started_at DateTime,
	start_ms UInt64,
	end_ms UInt64,
	region String,
	fault String,
	dry_run UInt8,
	outcome String,
	detect_s Float64,
	act_s Float64,
	recover_s Float64,
	restore_s Float64,
	fault_s Float64,
	other_regions_changed UInt8,
	detail String
) ENGINE = ReplacingMergeTree(end_ms)
PARTITION BY toYYYYMM(started_at)
ORDER BY (id)`},
		},
		Migration{
			Version: 5002,
			Name:    "gameday_events",
			Statements: []string{`CREATE TABLE IF NOT EXISTS gameday_events (
	gameday_id String,
	time DateTime,
	at_ms UInt64,
	offset_s Float64,
	region String,
	kind String,
	detail String
) ENGINE = MergeTree
PARTITION BY toYYYYMM(time)
ORDER BY (gameday_id, at_ms)`},
		},
	)
}
