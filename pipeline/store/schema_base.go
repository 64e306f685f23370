package store

// The base tables. Their names and columns are part of Meridian's
// user-facing contract (operators query them directly).
//
// Conventions that keep the SQL valid on ClickHouse 18.16 and on current
// releases:
//   - addresses are FixedString(16): IPv6, with IPv4 mapped (::ffff:a.b.c.d),
//     so one column holds both families; IPv6NumToString renders them;
//   - times are DateTime (UTC seconds);
//   - tables are partitioned by day (toYYYYMMDD) so that retention drops whole
//     partitions, which works where the server has no TTL;
//   - ingest_batch is the pipeline's batch id: retries and spool replays
//     check it so that no row is stored twice (see docs/architecture.md).
func init() {
	Register(
		Migration{
			Version: 1001,
			Name:    "flows",
			Statements: []string{`CREATE TABLE IF NOT EXISTS flows (
	time_received DateTime,
	time_start DateTime,
	time_end DateTime,
	flow_type String,
	exporter_addr FixedString(16),
	exporter_region String,
	exporter_site String,
	sampling_rate UInt64,
	in_if UInt32,
	out_if UInt32,
	in_if_name String,
	out_if_name String,
	src_addr FixedString(16),
	dst_addr FixedString(16),
	src_port UInt16,
	dst_port UInt16,
	proto UInt8,
	tcp_flags UInt8,
	etype UInt16,
	src_as UInt32,
	dst_as UInt32,
	src_region String,
	dst_region String,
	src_site String,
	dst_site String,
	src_role String,
	dst_role String,
	bytes UInt64,
	packets UInt64,
	action String,
	ingest_batch UInt64
) ENGINE = MergeTree
PARTITION BY toYYYYMMDD(time_received)
ORDER BY (time_received, exporter_addr)`},
			Partitioned: []string{"flows"},
		},
		Migration{
			Version: 1002,
			Name:    "firewall_events",
			Statements: []string{`CREATE TABLE IF NOT EXISTS firewall_events (
	time DateTime,
	received_at DateTime,
	device String,
	vendor String,
	format String,
	action String,
	src_addr FixedString(16),
	dst_addr FixedString(16),
	src_port UInt16,
	dst_port UInt16,
	proto UInt8,
	rule String,
	in_if String,
	out_if String,
	bytes UInt64,
	packets UInt64,
	nat_src_addr FixedString(16),
	nat_dst_addr FixedString(16),
	nat_src_port UInt16,
	nat_dst_port UInt16,
	region String,
	site String,
	raw String,
	ingest_batch UInt64
) ENGINE = MergeTree
PARTITION BY toYYYYMMDD(time)
ORDER BY (time, device)`},
			Partitioned: []string{"firewall_events"},
		},
		Migration{
			Version: 1003,
			Name:    "probe_results",
			Statements: []string{`CREATE TABLE IF NOT EXISTS probe_results (
	time DateTime,
	agent String,
	src_region String,
	src_site String,
	check_name String,
	probe_type String,
	target String,
	target_addr FixedString(16),
	target_region String,
	target_site String,
	sent UInt32,
	received UInt32,
	duplicates UInt32,
	reordered UInt32,
	loss_ratio Float64,
	rtt_min_ms Float64,
	rtt_avg_ms Float64,
	rtt_max_ms Float64,
	rtt_p50_ms Float64,
	rtt_p95_ms Float64,
	rtt_p99_ms Float64,
	rtt_stddev_ms Float64,
	jitter_ms Float64,
	jitter_rfc3550_ms Float64,
	mos Float64,
	rtts_us Array(UInt32),
	status UInt16,
	error String,
	phase_names Array(String),
	phase_values Array(Float64),
	ingest_batch UInt64
) ENGINE = MergeTree
PARTITION BY toYYYYMMDD(time)
ORDER BY (target_region, check_name, time)`},
			Partitioned: []string{"probe_results"},
		},
	)
}
