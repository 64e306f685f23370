package firewall

import (
	"strings"

	"github.com/meridian-obs/meridian/pipeline/record"
)

// isPANOSTraffic reports whether msg looks like a PAN-OS TRAFFIC CSV record:
// "FUTURE_USE,Receive Time,Serial,TRAFFIC,…".
func isPANOSTraffic(msg string) bool {
	i := strings.Index(msg, ",TRAFFIC,")
	if i < 0 || i > 80 {
		return false
	}
	return strings.Count(msg[:i], ",") == 2
}

// nextCSV returns the next comma-separated field of s, unquoting a field in
// double quotes (RFC 4180: "" inside is a quote). Only a quoted field with an
// escaped quote allocates.
func nextCSV(s string) (field, rest string, ok bool) {
	if s == "" {
		return "", "", true
	}
	if s[0] != '"' {
		if i := strings.IndexByte(s, ','); i >= 0 {
			return s[:i], s[i+1:], true
		}
		return s, "", true
	}
	escaped := false
	for i := 1; i < len(s); i++ {
		if s[i] != '"' {
			continue
		}
		if i+1 < len(s) && s[i+1] == '"' {
			escaped = true
			i++
			continue
		}
		field = s[1:i]
		rest = s[i+1:]
		switch {
		case rest == "":
		case rest[0] == ',':
			rest = rest[1:]
		default:
			return "", "", false // text after the closing quote
		}
		if escaped {
			field = strings.ReplaceAll(field, `""`, `"`)
		}
		return field, rest, true
	}
	return "", "", false // unterminated quote
}

// PAN-OS TRAFFIC field positions (PAN-OS 9.1 to 11.x syslog format).
const (
	panType        = 3
	panSubtype     = 4
	panSrc         = 7
	panDst         = 8
	panNATSrc      = 9
	panNATDst      = 10
	panRule        = 11
	panInIf        = 18
	panOutIf       = 19
	panSrcPort     = 24
	panDstPort     = 25
	panNATSrcPort  = 26
	panNATDstPort  = 27
	panProto       = 29
	panAction      = 30
	panBytes       = 31
	panPackets     = 34
	panLastNeeded  = panPackets
	panMinFieldNum = panPackets + 1
)

// parsePANOS reads a PAN-OS TRAFFIC log record.
func parsePANOS(msg string, ev *record.FirewallEvent) bool {
	ev.Vendor = "panos"
	s := msg
	var ok bool
	for i := 0; i <= panLastNeeded; i++ {
		if s == "" && i < panLastNeeded {
			return false
		}
		var f string
		if f, s, ok = nextCSV(s); !ok {
			return false
		}
		switch i {
		case panType:
			if f != "TRAFFIC" {
				return false
			}
		case panSrc:
			if !setAddr(&ev.SrcAddr, f) {
				return false
			}
		case panDst:
			if !setAddr(&ev.DstAddr, f) {
				return false
			}
		case panNATSrc:
			if !setAddr(&ev.NATSrcAddr, f) {
				return false
			}
		case panNATDst:
			if !setAddr(&ev.NATDstAddr, f) {
				return false
			}
		case panRule:
			ev.Rule = f
		case panInIf:
			ev.InIf = f
		case panOutIf:
			ev.OutIf = f
		case panSrcPort, panDstPort, panNATSrcPort, panNATDstPort:
			n, good := atou16(f)
			if !good {
				return false
			}
			switch i {
			case panSrcPort:
				ev.SrcPort = n
			case panDstPort:
				ev.DstPort = n
			case panNATSrcPort:
				ev.NATSrcPort = n
			default:
				ev.NATDstPort = n
			}
		case panProto:
			n, good := protoNumber(f)
			if !good {
				return false
			}
			ev.Proto = n
		case panAction:
			ev.Action = panosAction(f)
		case panBytes:
			n, good := atou(f, 1<<63)
			if !good {
				return false
			}
			ev.Bytes = n
		case panPackets:
			n, good := atou(f, 1<<63)
			if !good {
				return false
			}
			ev.Packets = n
		}
	}
	ev.Format = FormatPANOS
	return true
}

func panosAction(a string) string {
	switch {
	case a == "allow":
		return record.ActionAllow
	case a == "deny":
		return record.ActionDeny
	case strings.HasPrefix(a, "drop"): // drop, drop-icmp, drop-all
		return record.ActionDrop
	case strings.HasPrefix(a, "reset-"): // reset-client, reset-server, reset-both
		return record.ActionReject
	}
	return record.ActionUnknown
}
