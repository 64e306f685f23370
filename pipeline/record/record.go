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
	TimeReceived time.Time // when the collector received the record (partition key)
	TimeStart    time.Time // flow start as reported by the exporter (zero when unknown)
	TimeEnd      time.Time // flow end as reported by the exporter (zero when unknown)
	FlowType     string    // netflow5, netflow9, ipfix, sflow5, vpc

	ExporterAddr   netip.Addr
	ExporterRegion string
	ExporterSite   string
	SamplingRate   uint64 // the rate applied to Bytes and Packets (1 when unsampled)

	InIf      uint32
	OutIf     uint32
	InIfName  string
	OutIfName string

	SrcAddr   netip.Addr
	DstAddr   netip.Addr
	SrcPort   uint16
	DstPort   uint16
	Proto     uint8
	TCPFlags  uint8
	EType     uint16 // 0x0800 IPv4, 0x86dd IPv6
	SrcAS     uint32
	DstAS     uint32
	SrcRegion string
	DstRegion string
	SrcSite   string
	DstSite   string
	SrcRole   string
	DstRole   string

	Bytes   uint64 // exporter's counter × SamplingRate
	Packets uint64 // exporter's counter × SamplingRate

	// Action is set by sources that report a verdict (VPC flow logs:
	// ACCEPT → allow, REJECT → deny); empty for router flows.
	Action string
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
	Time       time.Time // event time from the log (received time when absent)
	ReceivedAt time.Time
	Device     string // hostname or device name
	Vendor     string // iptables, nftables, panos, asa, fortigate, vpc, unknown
	Format     string // parser that produced the row, or "unknown"
	Action     string // allow, deny, drop, reject, unknown
	SrcAddr    netip.Addr
	DstAddr    netip.Addr
	SrcPort    uint16
	DstPort    uint16
	Proto      uint8
	Rule       string // rule, policy or ACL name
	InIf       string
	OutIf      string
	Bytes      uint64
	Packets    uint64
	NATSrcAddr netip.Addr
	NATDstAddr netip.Addr
	NATSrcPort uint16
	NATDstPort uint16
	Region     string // from the device or source address enrichment
	Site       string
	Raw        string
}

// ProbeResult is one probe round: Count packets (or attempts) sent by one
// agent to one target, with the summary statistics and the RTT of every
// answered packet.
type ProbeResult struct {
	Time      time.Time // start of the round
	Agent     string
	SrcRegion string
	SrcSite   string

	Check        string // check name from the server configuration
	ProbeType    string // icmp, tcp, udp, http, dns
	Target       string // as configured (host, host:port, URL)
	TargetAddr   netip.Addr
	TargetRegion string
	TargetSite   string

	Sent       uint32
	Received   uint32
	Duplicates uint32
	Reordered  uint32
	LossRatio  float64

	RTTMinMs        float64
	RTTAvgMs        float64
	RTTMaxMs        float64
	RTTP50Ms        float64
	RTTP95Ms        float64
	RTTP99Ms        float64
	RTTStddevMs     float64
	JitterMs        float64 // mean absolute difference of consecutive RTTs (RFC 3393 style)
	JitterRFC3550Ms float64
	MOS             float64

	// RTTsUs holds the RTT in microseconds of every answered packet, in send
	// order. SLIs count packets under any latency bound from it.
	RTTsUs []uint32

	// Status is a probe-specific code: HTTP status, DNS rcode. 0 when none.
	Status uint16
	// Error is empty on success, else a short reason (timeout, refused, …).
	Error string
	// Phases carries probe-specific timings in milliseconds, e.g. for http:
	// dns, connect, tls, ttfb, total; cert_expiry_days.
	PhaseNames  []string
	PhaseValues []float64
}
