package store

import "strings"

// Flow rollups (owner: collectors/flow; versions 2101–2199). Each rollup is a
// SummingMergeTree filled by a materialized view `TO` it from flows, per
// minute and per hour, for the dashboard's top-N and time series. bytes and
// packets are already multiplied by the sampling rate in flows; flows counts
// flow records. Rows of one key are summed at merge time: queries must
// still sum() and GROUP BY. Valid on ClickHouse 18.16 (toStartOfMinute and
// toStartOfHour; no toStartOfInterval). See docs/architecture.md, "Flow
// rollups".
func init() {
	type rollup struct {
		name string   // table suffix
		dims []string // "column Type" after time
		sel  []string // select expressions, in the order of dims
	}
	rollups := []rollup{
		{"region",
			[]string{"exporter_region String", "src_region String", "dst_region String", "proto UInt8"},
			[]string{"exporter_region", "src_region", "dst_region", "proto"}},
		{"exporter",
			[]string{"exporter_addr FixedString(16)", "exporter_region String", "exporter_site String", "in_if_name String", "out_if_name String"},
			[]string{"exporter_addr", "exporter_region", "exporter_site", "in_if_name", "out_if_name"}},
		{"port",
			[]string{"proto UInt8", "dst_port UInt16", "src_region String", "dst_region String"},
			[]string{"proto", "dst_port", "src_region", "dst_region"}},
	}
	grains := []struct{ name, fn string }{{"1m", "toStartOfMinute"}, {"1h", "toStartOfHour"}}
	version := uint32(2101)
	for _, r := range rollups {
		for _, g := range grains {
			table := "flows_" + g.name + "_" + r.name
			keys := make([]string, len(r.dims))
			for i, d := range r.dims {
				keys[i] = strings.Fields(d)[0]
			}
			create := "CREATE TABLE IF NOT EXISTS " + table + " (\n\ttime DateTime,\n\t" +
				strings.Join(r.dims, ",\n\t") + ",\n\tbytes UInt64,\n\tpackets UInt64,\n\tflows UInt64\n" +
				") ENGINE = SummingMergeTree((bytes, packets, flows))\nPARTITION BY toYYYYMMDD(time)\nORDER BY (time, " +
				strings.Join(keys, ", ") + ")"
			view := "CREATE MATERIALIZED VIEW IF NOT EXISTS " + table + "_mv TO " + table + " AS SELECT " +
				g.fn + "(time_received) AS time, " + strings.Join(r.sel, ", ") +
				", sum(bytes) AS bytes, sum(packets) AS packets, count() AS flows FROM flows GROUP BY time, " +
				strings.Join(r.sel, ", ")
			Register(Migration{
				Version:     version,
				Name:        table,
				Statements:  []string{create, view},
				Partitioned: []string{table},
			})
			version++
		}
	}
}
