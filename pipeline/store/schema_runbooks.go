package store

// Runbook runs and the audit log (owner: runbooks). audit_log is the record
// of every decision: triggers, guardrail blocks and why, approvals (who,
// when), each action's request and outcome, verification, rollback.
// runbook_runs holds a row per state change of a run; the latest state of a
// run is argMax(state, version) (version increases with every row Meridian
// writes; updated_at has only second resolution).
func init() {
	Register(
		Migration{
			Version: 4101,
			Name:    "runbook_runs",
			Statements: []string{`CREATE TABLE IF NOT EXISTS runbook_runs (
	run_id String,
	runbook String,
	group_key String,
	slo String,
	fingerprint String,
	origin String,
	requested_by String,
	state String,
	reason String,
	dry_run UInt8,
	labels String,
	params String,
	created_at DateTime,
	updated_at DateTime,
	version UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMMDD(created_at)
ORDER BY (run_id)`},
			Partitioned: []string{"runbook_runs"},
		},
		Migration{
			Version: 4102,
			Name:    "audit_log",
			Statements: []string{`CREATE TABLE IF NOT EXISTS audit_log (
	time DateTime,
	seq UInt64,
	component String,
	run_id String,
	runbook String,
	group_key String,
	kind String,
	decision String,
	actor String,
	detail String,
	dry_run UInt8
) ENGINE = MergeTree
PARTITION BY toYYYYMMDD(time)
ORDER BY (time, run_id, seq)`},
			Partitioned: []string{"audit_log"},
		},
	)
}
