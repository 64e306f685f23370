package firewall

import (
	"strings"
	"time"

	"github.com/meridian-obs/meridian/pipeline/record"
)

// nextKV returns the next key=value pair of a FortiGate line; a value may be
// double-quoted (and then hold spaces). ok is false for a malformed pair.
func nextKV(s string) (k, v, rest string, ok bool) {
	for len(s) > 0 && s[0] == ' ' {
		s = s[1:]
	}
	if s == "" {
		return "", "", "", true
	}
	eq := strings.IndexByte(s, '=')
	if eq <= 0 {
		return "", "", "", false
	}
	k = s[:eq]
	if strings.IndexByte(k, ' ') >= 0 {
		return "", "", "", false
	}
	s = s[eq+1:]
	if len(s) > 0 && s[0] == '"' {
		end := strings.IndexByte(s[1:], '"')
		if end < 0 {
			return "", "", "", false
		}
		return k, s[1 : end+1], s[end+2:], true
	}
	if i := strings.IndexByte(s, ' '); i >= 0 {
		return k, s[:i], s[i+1:], true
	}
	return k, s, "", true
}

// isFortiTraffic reports whether a FortiGate line is a traffic log.
func isFortiTraffic(msg string) bool {
	return strings.Contains(msg, `type="traffic"`) || strings.Contains(msg, " type=traffic ")
}

// parseFortiGate reads a FortiGate (FortiOS 6–7) traffic log:
//
//	date=2024-01-15 time=10:00:00 devname="FGT60E" … srcip=10.1.1.10 srcport=51514 srcintf="port2" dstip=8.8.8.8 dstport=53 dstintf="wan1" proto=17 action="accept" policyid=3 policyname="lan-out" … sentbyte=90 rcvdbyte=130 sentpkt=1 rcvdpkt=1 transip=203.0.113.5 transport=40001
func parseFortiGate(msg string, ev *record.FirewallEvent) bool {
	ev.Vendor = "fortigate"
	var date, clock, tz, policyID string
	var sent, rcvd, spkt, rpkt uint64
	s := msg
	var haveSrc, haveDst bool
	for s != "" {
		k, v, rest, ok := nextKV(s)
		if !ok {
			return false
		}
		s = rest
		switch k {
		case "date":
			date = v
		case "time":
			clock = v
		case "tz":
			tz = v
		case "devname":
			ev.Device = v
		case "srcip":
			if ev.SrcAddr, haveSrc = parseAddr(v); !haveSrc {
				return false
			}
		case "dstip":
			if ev.DstAddr, haveDst = parseAddr(v); !haveDst {
				return false
			}
		case "srcport":
			if ev.SrcPort, ok = atou16(v); !ok {
				return false
			}
		case "dstport":
			if ev.DstPort, ok = atou16(v); !ok {
				return false
			}
		case "proto":
			if ev.Proto, ok = protoNumber(v); !ok {
				return false
			}
		case "srcintf":
			ev.InIf = v
		case "dstintf":
			ev.OutIf = v
		case "action":
			ev.Action = fortiAction(v)
		case "policyid":
			policyID = v
		case "policyname":
			ev.Rule = v
		case "sentbyte", "rcvdbyte", "sentpkt", "rcvdpkt":
			n, good := atou(v, 1<<62)
			if !good {
				return false
			}
			switch k {
			case "sentbyte":
				sent = n
			case "rcvdbyte":
				rcvd = n
			case "sentpkt":
				spkt = n
			default:
				rpkt = n
			}
		case "transip":
			if !setAddr(&ev.NATSrcAddr, v) {
				return false
			}
		case "transport":
			if ev.NATSrcPort, ok = atou16(v); !ok {
				return false
			}
		case "tranip":
			if !setAddr(&ev.NATDstAddr, v) {
				return false
			}
		case "tranport":
			if ev.NATDstPort, ok = atou16(v); !ok {
				return false
			}
		}
	}
	if !haveSrc || !haveDst {
		return false
	}
	if ev.Rule == "" {
		ev.Rule = policyID
	}
	ev.Bytes, ev.Packets = sent+rcvd, spkt+rpkt
	if ev.Time.IsZero() && date != "" && clock != "" {
		ev.Time = fortiTime(date, clock, tz)
	}
	ev.Format = FormatFortiGate
	return true
}

// fortiTime reads date=2024-01-15 time=10:00:00 tz="+0100"; zero when unreadable.
func fortiTime(date, clock, tz string) time.Time {
	if len(date) != 10 || len(clock) != 8 {
		return time.Time{}
	}
	y, ok1 := atou(date[:4], 9999)
	mo, ok2 := atou(date[5:7], 12)
	d, ok3 := atou(date[8:10], 31)
	h, ok4 := atou(clock[:2], 23)
	mi, ok5 := atou(clock[3:5], 59)
	se, ok6 := atou(clock[6:8], 60)
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 || mo == 0 || d == 0 {
		return time.Time{}
	}
	t := time.Date(int(y), time.Month(mo), int(d), int(h), int(mi), int(se), 0, time.UTC)
	if len(tz) == 5 && (tz[0] == '+' || tz[0] == '-') {
		th, a := atou(tz[1:3], 14)
		tm, b := atou(tz[3:5], 59)
		if a && b {
			off := time.Duration(th)*time.Hour + time.Duration(tm)*time.Minute
			if tz[0] == '+' {
				t = t.Add(-off)
			} else {
				t = t.Add(off)
			}
		}
	}
	return t
}

func fortiAction(a string) string {
	switch a {
	case "accept", "close", "timeout", "client-rst", "server-rst", "start":
		return record.ActionAllow
	case "deny", "block":
		return record.ActionDeny
	case "dropped", "drop":
		return record.ActionDrop
	case "reject":
		return record.ActionReject
	}
	return record.ActionUnknown
}
