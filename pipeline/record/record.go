// Package record holds the plain row types that flow from the collectors and
// the probe server into the pipeline. It imports no storage driver: every
// component may depend on it.
package record

import (
	"context"
	"net/netip"
	"time"
)

// Sink accepts rows destined for one table. Implementations are safe for
// concurrent use. Write blocks while the pipeline's bounded queue is full
// (backpressure) and returns an error only when ctx ends or the pipeline is
// stopped. A nil error means the rows are the pipeline's responsibility: they
// will reach ClickHouse exactly once, or be counted as dropped.
type Sink[T any] interface {
	Write(ctx context.Context, rows []T) error
}

// SinkFunc adapts a function to a Sink.
type SinkFunc[T any] func(ctx context.Context, rows []T) error

// Write calls f.
func (f SinkFunc[T]) Write(ctx context.Context, rows []T) error { return f(ctx, rows) }

// Flow is one flow record as exported by a router (NetFlow v5/v9, IPFIX,
// sFlow) or a cloud (VPC flow logs), after sampling correction and enrichment.
type Flow struct {
	TimeReceived time.Time `json:"time_received,omitempty"` // when the collector received the record (partition key)
	TimeStart    time.Time `json:"time_start,omitempty"`    // flow start as reported by the exporter (zero when unknown)
	TimeEnd      time.Time `json:"time_end,omitempty"`      // flow end as reported by the exporter (zero when unknown)
	FlowType     string    `json:"flow_type,omitempty"`     // netflow5, netflow9, ipfix, sflow5, vpc

	ExporterAddr   netip.Addr `json:"exporter_addr,omitempty"`
	ExporterRegion string     `json:"exporter_region,omitempty"`
	ExporterSite   string     `json:"exporter_site,omitempty"`
	SamplingRate   uint64     `json:"sampling_rate,omitempty"` // the rate applied to Bytes and Packets (1 when unsampled)

	InIf      uint32 `json:"in_if,omitempty"`
	OutIf     uint32 `json:"out_if,omitempty"`
	InIfName  string `json:"in_if_name,omitempty"`
	OutIfName string `json:"out_if_name,omitempty"`

	SrcAddr   netip.Addr `json:"src_addr,omitempty"`
	DstAddr   netip.Addr `json:"dst_addr,omitempty"`
	SrcPort   uint16     `json:"src_port,omitempty"`
	DstPort   uint16     `json:"dst_port,omitempty"`
	Proto     uint8      `json:"proto,omitempty"`
	TCPFlags  uint8      `json:"tcp_flags,omitempty"`
	EType     uint16     `json:"etype,omitempty"` // 0x0800 IPv4, 0x86dd IPv6
	SrcAS     uint32     `json:"src_as,omitempty"`
	DstAS     uint32     `json:"dst_as,omitempty"`
	SrcRegion string     `json:"src_region,omitempty"`
	DstRegion string     `json:"dst_region,omitempty"`
	SrcSite   string     `json:"src_site,omitempty"`
	DstSite   string     `json:"dst_site,omitempty"`
	SrcRole   string     `json:"src_role,omitempty"`
	DstRole   string     `json:"dst_role,omitempty"`

	Bytes   uint64 `json:"bytes,omitempty"`   // exporter's counter × SamplingRate
	Packets uint64 `json:"packets,omitempty"` // exporter's counter × SamplingRate

	// Action is set by sources that report a verdict (VPC flow logs:
	// ACCEPT → allow, REJECT → deny); empty for router flows.
	Action string `json:"action,omitempty"`
}

// Firewall actions, normalised across vendors.
const (
	ActionAllow   = "allow"
	ActionDeny    = "deny"
	ActionDrop    = "drop"
	ActionReject  = "reject"
	ActionUnknown = "unknown"
)

// FirewallEvent is one normalised firewall log line. A line that no parser
// understands is kept with Format "unknown" and the raw text.
type FirewallEvent struct {
	Time       time.Time  `json:"time,omitempty"` // event time from the log (received time when absent)
	ReceivedAt time.Time  `json:"received_at,omitempty"`
	Device     string     `json:"device,omitempty"` // hostname or device name
	Vendor     string     `json:"vendor,omitempty"` // iptables, nftables, panos, asa, fortigate, vpc, unknown
	Format     string     `json:"format,omitempty"` // parser that produced the row, or "unknown"
	Action     string     `json:"action,omitempty"` // allow, deny, drop, reject, unknown
	SrcAddr    netip.Addr `json:"src_addr,omitempty"`
	DstAddr    netip.Addr `json:"dst_addr,omitempty"`
	SrcPort    uint16     `json:"src_port,omitempty"`
	DstPort    uint16     `json:"dst_port,omitempty"`
	Proto      uint8      `json:"proto,omitempty"`
	Rule       string     `json:"rule,omitempty"` // rule, policy or ACL name
	InIf       string     `json:"in_if,omitempty"`
	OutIf      string     `json:"out_if,omitempty"`
	Bytes      uint64     `json:"bytes,omitempty"`
	Packets    uint64     `json:"packets,omitempty"`
	NATSrcAddr netip.Addr `json:"nat_src_addr,omitempty"`
	NATDstAddr netip.Addr `json:"nat_dst_addr,omitempty"`
	NATSrcPort uint16     `json:"nat_src_port,omitempty"`
	NATDstPort uint16     `json:"nat_dst_port,omitempty"`
	Region     string     `json:"region,omitempty"` // from the device or source address enrichment
	Site       string     `json:"site,omitempty"`
	Raw        string     `json:"raw,omitempty"`
}

// ProbeResult is one probe round: Count packets (or attempts) sent by one
// agent to one target, with the summary statistics and the RTT of every
// answered packet.
type ProbeResult struct {
	Time      time.Time `json:"time,omitempty"` // start of the round
	Agent     string    `json:"agent,omitempty"`
	SrcRegion string    `json:"src_region,omitempty"`
	SrcSite   string    `json:"src_site,omitempty"`

	Check        string     `json:"check_name,omitempty"` // check name from the server configuration
	ProbeType    string     `json:"probe_type,omitempty"` // icmp, tcp, udp, http, dns
	Target       string     `json:"target,omitempty"`     // as configured (host, host:port, URL)
	TargetAddr   netip.Addr `json:"target_addr,omitempty"`
	TargetRegion string     `json:"target_region,omitempty"`
	TargetSite   string     `json:"target_site,omitempty"`

	Sent       uint32  `json:"sent,omitempty"`
	Received   uint32  `json:"received,omitempty"`
	Duplicates uint32  `json:"duplicates,omitempty"`
	Reordered  uint32  `json:"reordered,omitempty"`
	LossRatio  float64 `json:"loss_ratio,omitempty"`

	RTTMinMs        float64 `json:"rtt_min_ms,omitempty"`
	RTTAvgMs        float64 `json:"rtt_avg_ms,omitempty"`
	RTTMaxMs        float64 `json:"rtt_max_ms,omitempty"`
	RTTP50Ms        float64 `json:"rtt_p50_ms,omitempty"`
	RTTP95Ms        float64 `json:"rtt_p95_ms,omitempty"`
	RTTP99Ms        float64 `json:"rtt_p99_ms,omitempty"`
	RTTStddevMs     float64 `json:"rtt_stddev_ms,omitempty"`
	JitterMs        float64 `json:"jitter_ms,omitempty"` // mean absolute difference of consecutive RTTs (RFC 3393 style)
	JitterRFC3550Ms float64 `json:"jitter_rfc3550_ms,omitempty"`
	MOS             float64 `json:"mos,omitempty"`

	// RTTsUs holds the RTT in microseconds of every answered packet, in send
	// order. SLIs count packets under any latency bound from it.
	RTTsUs []uint32 `json:"rtts_us,omitempty"`

	// Status is a probe-specific code: HTTP status, DNS rcode. 0 when none.
	Status uint16 `json:"status,omitempty"`
	// Error is empty on success, else a short reason (timeout, refused, …).
	Error string `json:"error,omitempty"`
	// Phases carries probe-specific timings in milliseconds, e.g. for http:
	// dns, connect, tls, ttfb, total; cert_expiry_days.
	PhaseNames  []string  `json:"phase_names,omitempty"`
	PhaseValues []float64 `json:"phase_values,omitempty"`
}
