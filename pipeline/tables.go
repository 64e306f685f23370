package pipeline

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/meridian-obs/meridian/pipeline/record"
)

// Table describes how rows of type T are stored in one ClickHouse table.
type Table[T any] struct {
	Name    string
	Columns []string // in the order Append passes values; ingest_batch last
	// TimeColumn is the DateTime column the table is partitioned by (by day).
	TimeColumn string
	Time       func(*T) time.Time
	// Append adds one row to a batch. It must pass values of exactly the
	// column types so that clickhouse-go never fails a conversion.
	Append func(b driver.Batch, r *T, batchID uint64) error
	// AppendRows, when set, adds all rows column by column (typed slices,
	// no per-value boxing): the hot tables use it. It must store exactly
	// what Append stores (TestColumnarMatchesRowAppend).
	AppendRows func(b driver.Batch, rows []T, batchID uint64) error
}

// columns appends typed column slices to a batch in column order, keeping
// the first error.
type columns struct {
	b   driver.Batch
	i   int
	err error
}

func (c *columns) add(v any) {
	if c.err == nil {
		c.err = c.b.Column(c.i).Append(v)
	}
	c.i++
}

func (c *columns) done() error {
	if c.err == nil && c.i != len(c.b.Columns()) {
		c.err = fmt.Errorf("appended %d columns of %d", c.i, len(c.b.Columns()))
	}
	return c.err
}

// col extracts one field of every row into a typed slice.
func col[T, V any](rows []T, f func(*T) V) []V {
	out := make([]V, len(rows))
	for i := range rows {
		out[i] = f(&rows[i])
	}
	return out
}

// addrCol renders addresses as FixedString(16) values (see Addr16) backed
// by one buffer.
func addrCol[T any](rows []T, f func(*T) netip.Addr) [][]byte {
	buf := make([]byte, 16*len(rows))
	out := make([][]byte, len(rows))
	for i := range rows {
		b := buf[16*i : 16*i+16 : 16*i+16]
		if a := f(&rows[i]); a.IsValid() {
			a16 := a.As16()
			copy(b, a16[:])
		}
		out[i] = b
	}
	return out
}

func idCol(n int, id uint64) []uint64 {
	out := make([]uint64, n)
	for i := range out {
		out[i] = id
	}
	return out
}

func (t *Table[T]) insertSQL() string {
	return "INSERT INTO " + t.Name + " (" + strings.Join(t.Columns, ", ") + ")"
}

// Addr16 renders an address as the 16 bytes of a FixedString(16) column:
// IPv6 as is, IPv4 mapped into ::ffff:0:0/96, the invalid address as zeros.
func Addr16(a netip.Addr) []byte {
	if !a.IsValid() {
		return make([]byte, 16)
	}
	b := a.As16()
	return b[:]
}

// DT clamps a time to ClickHouse's DateTime range (1970 to 2105); the zero
// time becomes the epoch.
func DT(t time.Time) time.Time {
	if t.Unix() < 0 {
		return time.Unix(0, 0).UTC()
	}
	if t.Unix() > 4294967295 {
		return time.Unix(4294967295, 0).UTC()
	}
	return t
}

// FlowsTable stores record.Flow rows.
var FlowsTable = &Table[record.Flow]{
	Name: "flows",
	Columns: []string{"time_received", "time_start", "time_end", "flow_type", "exporter_addr", "exporter_region",
		"exporter_site", "sampling_rate", "in_if", "out_if", "in_if_name", "out_if_name", "src_addr", "dst_addr",
		"src_port", "dst_port", "proto", "tcp_flags", "etype", "src_as", "dst_as", "src_region", "dst_region",
		"src_site", "dst_site", "src_role", "dst_role", "bytes", "packets", "action", "ingest_batch"},
	TimeColumn: "time_received",
	Time:       func(r *record.Flow) time.Time { return r.TimeReceived },
	Append: func(b driver.Batch, r *record.Flow, id uint64) error {
		return b.Append(DT(r.TimeReceived), DT(r.TimeStart), DT(r.TimeEnd), r.FlowType, Addr16(r.ExporterAddr),
			r.ExporterRegion, r.ExporterSite, r.SamplingRate, r.InIf, r.OutIf, r.InIfName, r.OutIfName,
			Addr16(r.SrcAddr), Addr16(r.DstAddr), r.SrcPort, r.DstPort, r.Proto, r.TCPFlags, r.EType, r.SrcAS,
			r.DstAS, r.SrcRegion, r.DstRegion, r.SrcSite, r.DstSite, r.SrcRole, r.DstRole, r.Bytes, r.Packets, r.Action, id)
	},
	AppendRows: func(b driver.Batch, rows []record.Flow, id uint64) error {
		type F = record.Flow
		c := columns{b: b}
		c.add(col(rows, func(r *F) time.Time { return DT(r.TimeReceived) }))
		c.add(col(rows, func(r *F) time.Time { return DT(r.TimeStart) }))
		c.add(col(rows, func(r *F) time.Time { return DT(r.TimeEnd) }))
		c.add(col(rows, func(r *F) string { return r.FlowType }))
		c.add(addrCol(rows, func(r *F) netip.Addr { return r.ExporterAddr }))
		c.add(col(rows, func(r *F) string { return r.ExporterRegion }))
		c.add(col(rows, func(r *F) string { return r.ExporterSite }))
		c.add(col(rows, func(r *F) uint64 { return r.SamplingRate }))
		c.add(col(rows, func(r *F) uint32 { return r.InIf }))
		c.add(col(rows, func(r *F) uint32 { return r.OutIf }))
		c.add(col(rows, func(r *F) string { return r.InIfName }))
		c.add(col(rows, func(r *F) string { return r.OutIfName }))
		c.add(addrCol(rows, func(r *F) netip.Addr { return r.SrcAddr }))
		c.add(addrCol(rows, func(r *F) netip.Addr { return r.DstAddr }))
		c.add(col(rows, func(r *F) uint16 { return r.SrcPort }))
		c.add(col(rows, func(r *F) uint16 { return r.DstPort }))
		c.add(col(rows, func(r *F) uint8 { return r.Proto }))
		c.add(col(rows, func(r *F) uint8 { return r.TCPFlags }))
		c.add(col(rows, func(r *F) uint16 { return r.EType }))
		c.add(col(rows, func(r *F) uint32 { return r.SrcAS }))
		c.add(col(rows, func(r *F) uint32 { return r.DstAS }))
		c.add(col(rows, func(r *F) string { return r.SrcRegion }))
		c.add(col(rows, func(r *F) string { return r.DstRegion }))
		c.add(col(rows, func(r *F) string { return r.SrcSite }))
		c.add(col(rows, func(r *F) string { return r.DstSite }))
		c.add(col(rows, func(r *F) string { return r.SrcRole }))
		c.add(col(rows, func(r *F) string { return r.DstRole }))
		c.add(col(rows, func(r *F) uint64 { return r.Bytes }))
		c.add(col(rows, func(r *F) uint64 { return r.Packets }))
		c.add(col(rows, func(r *F) string { return r.Action }))
		c.add(idCol(len(rows), id))
		return c.done()
	},
}

// FirewallEventsTable stores record.FirewallEvent rows.
var FirewallEventsTable = &Table[record.FirewallEvent]{
	Name: "firewall_events",
	Columns: []string{"time", "received_at", "device", "vendor", "format", "action", "src_addr", "dst_addr",
		"src_port", "dst_port", "proto", "rule", "in_if", "out_if", "bytes", "packets", "nat_src_addr",
		"nat_dst_addr", "nat_src_port", "nat_dst_port", "region", "site", "raw", "ingest_batch"},
	TimeColumn: "time",
	Time:       func(r *record.FirewallEvent) time.Time { return r.Time },
	Append: func(b driver.Batch, r *record.FirewallEvent, id uint64) error {
		return b.Append(DT(r.Time), DT(r.ReceivedAt), r.Device, r.Vendor, r.Format, r.Action, Addr16(r.SrcAddr),
			Addr16(r.DstAddr), r.SrcPort, r.DstPort, r.Proto, r.Rule, r.InIf, r.OutIf, r.Bytes, r.Packets,
			Addr16(r.NATSrcAddr), Addr16(r.NATDstAddr), r.NATSrcPort, r.NATDstPort, r.Region, r.Site, r.Raw, id)
	},
}

// ProbeResultsTable stores record.ProbeResult rows.
var ProbeResultsTable = &Table[record.ProbeResult]{
	Name: "probe_results",
	Columns: []string{"time", "agent", "src_region", "src_site", "check_name", "probe_type", "target",
		"target_addr", "target_region", "target_site", "sent", "received", "duplicates", "reordered", "loss_ratio",
		"rtt_min_ms", "rtt_avg_ms", "rtt_max_ms", "rtt_p50_ms", "rtt_p95_ms", "rtt_p99_ms", "rtt_stddev_ms",
		"jitter_ms", "jitter_rfc3550_ms", "mos", "rtts_us", "status", "error", "phase_names", "phase_values",
		"ingest_batch"},
	TimeColumn: "time",
	Time:       func(r *record.ProbeResult) time.Time { return r.Time },
	Append: func(b driver.Batch, r *record.ProbeResult, id uint64) error {
		rtts, names, values := r.RTTsUs, r.PhaseNames, r.PhaseValues
		if rtts == nil {
			rtts = []uint32{}
		}
		if names == nil {
			names = []string{}
		}
		if values == nil {
			values = []float64{}
		}
		return b.Append(DT(r.Time), r.Agent, r.SrcRegion, r.SrcSite, r.Check, r.ProbeType, r.Target,
			Addr16(r.TargetAddr), r.TargetRegion, r.TargetSite, r.Sent, r.Received, r.Duplicates, r.Reordered,
			r.LossRatio, r.RTTMinMs, r.RTTAvgMs, r.RTTMaxMs, r.RTTP50Ms, r.RTTP95Ms, r.RTTP99Ms, r.RTTStddevMs,
			r.JitterMs, r.JitterRFC3550Ms, r.MOS, rtts, r.Status, r.Error, names, values, id)
	},
}
