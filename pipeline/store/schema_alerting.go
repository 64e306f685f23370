package store

// Tables of the alerting component (package alerting): one row per alert
// state change (firing, resolved), from Meridian's SLO alerts and from
// Alertmanager's webhook.
func init() {
	Register(Migration{
		Version: 4001,
		Name:    "alerts",
		Statements: []string{`CREATE TABLE IF NOT EXISTS alerts (
	time DateTime,
	fingerprint String,
	source String,
	status String,
	alertname String,
	slo String,
	severity String,
	label_names Array(String),
	label_values Array(String),
	annotation_names Array(String),
	annotation_values Array(String),
	starts_at DateTime,
	ends_at DateTime
) ENGINE = MergeTree
PARTITION BY toYYYYMMDD(time)
ORDER BY (time, fingerprint)`},
		Partitioned: []string{"alerts"},
	})
}
