// Package vpc reads AWS VPC Flow Logs (the default version 2 format and
// custom formats with the fields of versions 3 to 8, whose order a header
// line gives) from files, gzip included, into the flows table.
package vpc

import (
	"net/netip"
	"strings"
	"time"

	"github.com/meridian-obs/meridian/pipeline/record"
)

// DefaultFields is the default (version 2) format.
var DefaultFields = []string{"version", "account-id", "interface-id", "srcaddr", "dstaddr", "srcport", "dstport",
	"protocol", "packets", "bytes", "start", "end", "action", "log-status"}

// Field identifiers of the fields Meridian reads; others are skipped.
const (
	fOther = iota
	fVersion
	fInterface
	fSrcAddr
	fDstAddr
	fSrcPort
	fDstPort
	fProto
	fPackets
	fBytes
	fStart
	fEnd
	fAction
	fLogStatus
	fTCPFlags
	fRegion
	fAZ
	fPktSrcAddr
	fPktDstAddr
	fDirection
)

// knownFields lists every field name of the versions 2–8 formats (a header
// line is recognised by them) and the ones Meridian reads.
var knownFields = map[string]int{
	"version": fVersion, "account-id": fOther, "interface-id": fInterface, "srcaddr": fSrcAddr, "dstaddr": fDstAddr,
	"srcport": fSrcPort, "dstport": fDstPort, "protocol": fProto, "packets": fPackets, "bytes": fBytes,
	"start": fStart, "end": fEnd, "action": fAction, "log-status": fLogStatus,
	// v3
	"vpc-id": fOther, "subnet-id": fOther, "instance-id": fOther, "tcp-flags": fTCPFlags, "type": fOther,
	"pkt-srcaddr": fPktSrcAddr, "pkt-dstaddr": fPktDstAddr,
	// v4
	"region": fRegion, "az-id": fAZ, "sublocation-type": fOther, "sublocation-id": fOther,
	// v5
	"pkt-src-aws-service": fOther, "pkt-dst-aws-service": fOther, "flow-direction": fDirection, "traffic-path": fOther,
	// v7, v8
	"ecs-cluster-arn": fOther, "ecs-cluster-name": fOther, "ecs-container-instance-arn": fOther,
	"ecs-container-instance-id": fOther, "ecs-container-id": fOther, "ecs-second-container-id": fOther,
	"ecs-service-name": fOther, "ecs-task-definition-arn": fOther, "ecs-task-arn": fOther, "ecs-task-id": fOther,
	"reject-reason": fOther,
}

// Format is a parsed field order.
type Format struct {
	ids []int
}

// NewFormat returns the format of the given field names (as in a header line
// or an AWS log format string with ${…} removed). Unknown names are skipped
// fields; a format without srcaddr and dstaddr is an error.
func NewFormat(fields []string) (Format, error) {
	f := Format{ids: make([]int, len(fields))}
	var src, dst bool
	for i, name := range fields {
		name = strings.TrimSuffix(strings.TrimPrefix(name, "${"), "}")
		f.ids[i] = knownFields[name]
		src = src || f.ids[i] == fSrcAddr
		dst = dst || f.ids[i] == fDstAddr
	}
	if !src || !dst {
		return Format{}, errFormat
	}
	return f, nil
}

type formatError struct{}

func (formatError) Error() string { return "vpc: a format needs at least srcaddr and dstaddr" }

var errFormat error = formatError{}

// isHeader reports whether line is a header: its first field is a known field name.
func isHeader(line string) bool {
	first, _, _ := strings.Cut(line, " ")
	_, ok := knownFields[first]
	return ok
}

// Record statuses (log-status) and bad-record reasons.
const (
	StatusOK       = "ok"
	StatusNoData   = "nodata"
	StatusSkipData = "skipdata"

	ReasonFieldCount = "field_count"
	ReasonBadAddr    = "bad_addr"
	ReasonBadNumber  = "bad_number"
	ReasonBadAction  = "bad_action"
	ReasonBadStatus  = "bad_status"
	ReasonBadHeader  = "bad_header"
	ReasonTooLong    = "too_long"
	ReasonCorrupt    = "corrupt_gzip"
	ReasonRead       = "read_error"
	ReasonOpen       = "open_error"
)

func atou(s string, max uint64) (uint64, bool) {
	if s == "" || len(s) > 20 {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (max-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// parseLine fills fl from one record. status is ok, nodata or skipdata;
// reason is non-empty for a bad record. Strings in fl are substrings of line.
func (f Format) parseLine(line string, fl *record.Flow) (status, reason string) {
	*fl = record.Flow{FlowType: "vpc", SamplingRate: 1}
	status = StatusOK
	var pktSrc, pktDst netip.Addr
	var direction, iface string
	i := 0
	for s := line; ; i++ {
		var tok string
		if j := strings.IndexByte(s, ' '); j >= 0 {
			tok, s = s[:j], s[j+1:]
		} else {
			tok, s = s, ""
		}
		if i >= len(f.ids) {
			return status, ReasonFieldCount
		}
		if tok == "-" { // no value (NODATA and SKIPDATA records, missing fields)
			if s == "" {
				break
			}
			continue
		}
		var ok bool
		var n uint64
		switch f.ids[i] {
		case fSrcAddr, fDstAddr, fPktSrcAddr, fPktDstAddr:
			a, err := netip.ParseAddr(tok)
			if err != nil {
				return status, ReasonBadAddr
			}
			a = a.Unmap()
			switch f.ids[i] {
			case fSrcAddr:
				fl.SrcAddr = a
			case fDstAddr:
				fl.DstAddr = a
			case fPktSrcAddr:
				pktSrc = a
			default:
				pktDst = a
			}
		case fSrcPort:
			if n, ok = atou(tok, 0xffff); !ok {
				return status, ReasonBadNumber
			}
			fl.SrcPort = uint16(n)
		case fDstPort:
			if n, ok = atou(tok, 0xffff); !ok {
				return status, ReasonBadNumber
			}
			fl.DstPort = uint16(n)
		case fProto:
			if n, ok = atou(tok, 255); !ok {
				return status, ReasonBadNumber
			}
			fl.Proto = uint8(n)
		case fPackets:
			if fl.Packets, ok = atou(tok, 1<<63); !ok {
				return status, ReasonBadNumber
			}
		case fBytes:
			if fl.Bytes, ok = atou(tok, 1<<63); !ok {
				return status, ReasonBadNumber
			}
		case fStart, fEnd:
			if n, ok = atou(tok, 1<<40); !ok {
				return status, ReasonBadNumber
			}
			if f.ids[i] == fStart {
				fl.TimeStart = time.Unix(int64(n), 0).UTC()
			} else {
				fl.TimeEnd = time.Unix(int64(n), 0).UTC()
			}
		case fTCPFlags:
			if n, ok = atou(tok, 255); !ok {
				return status, ReasonBadNumber
			}
			fl.TCPFlags = uint8(n)
		case fAction:
			switch tok {
			case "ACCEPT":
				fl.Action = record.ActionAllow
			case "REJECT":
				fl.Action = record.ActionDeny
			default:
				return status, ReasonBadAction
			}
		case fLogStatus:
			switch tok {
			case "OK":
			case "NODATA":
				status = StatusNoData
			case "SKIPDATA":
				status = StatusSkipData
			default:
				return status, ReasonBadStatus
			}
		case fInterface:
			iface = tok
		case fRegion:
			fl.ExporterRegion = tok
		case fAZ:
			fl.ExporterSite = tok
		case fDirection:
			direction = tok
		case fVersion:
			if _, ok = atou(tok, 255); !ok {
				return status, ReasonBadNumber
			}
		}
		if s == "" {
			break
		}
	}
	if i+1 != len(f.ids) {
		return status, ReasonFieldCount
	}
	if status != StatusOK {
		return status, ""
	}
	if !fl.SrcAddr.IsValid() || !fl.DstAddr.IsValid() {
		return status, ReasonBadAddr
	}
	// srcaddr/dstaddr are the interface's view; pkt-srcaddr/pkt-dstaddr,
	// when logged, are the packet's original addresses (through a NAT
	// gateway, say) and take precedence.
	if pktSrc.IsValid() {
		fl.SrcAddr = pktSrc
	}
	if pktDst.IsValid() {
		fl.DstAddr = pktDst
	}
	if direction == "egress" {
		fl.OutIfName = iface
	} else {
		fl.InIfName = iface
	}
	if fl.SrcAddr.Is4() {
		fl.EType = 0x0800
	} else {
		fl.EType = 0x86dd
	}
	return status, ""
}
