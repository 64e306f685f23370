package firewall

import (
	"strings"

	"github.com/meridian-obs/meridian/pipeline/record"
)

// parseNetfilter reads a kernel LOG line as written by iptables' LOG target
// or nftables' log statement:
//
//	[1234.5678] DROP-IN: IN=eth0 OUT= MAC=… SRC=203.0.113.9 DST=198.51.100.2 LEN=60 … PROTO=TCP SPT=51514 DPT=22 …
//
// The text before IN= is the configured log prefix; it names the rule and,
// through the prefix mapping, the action.
func (p *Parser) parseNetfilter(msg string, ev *record.FirewallEvent) bool {
	i := strings.Index(msg, "IN=")
	for i > 0 && msg[i-1] != ' ' && msg[i-1] != ':' { // e.g. "…VLANIN=": find a token start
		j := strings.Index(msg[i+3:], "IN=")
		if j < 0 {
			return false
		}
		i += 3 + j
	}
	prefix := msg[:i]
	// Strip the kernel timestamp "[ 1234.567890] ".
	if len(prefix) > 0 && prefix[0] == '[' {
		if k := strings.IndexByte(prefix, ']'); k > 0 {
			prefix = prefix[k+1:]
		}
	}
	prefix = strings.TrimSpace(prefix)
	prefix = strings.TrimRight(prefix, ": ")
	ev.Format = FormatIPTables
	ev.Vendor = "iptables"
	ev.Rule = prefix
	ev.Action = record.ActionUnknown
	matched := false
	for _, pa := range p.prefixes {
		if strings.HasPrefix(prefix, pa.Prefix) {
			ev.Action = pa.Action
			if pa.Vendor != "" {
				ev.Vendor = pa.Vendor
			}
			matched = true
			break
		}
	}
	if !matched {
		switch {
		case containsFold(prefix, "DROP"):
			ev.Action = record.ActionDrop
		case containsFold(prefix, "REJECT"):
			ev.Action = record.ActionReject
		case containsFold(prefix, "DENY"), containsFold(prefix, "BLOCK"):
			ev.Action = record.ActionDeny
		case containsFold(prefix, "ACCEPT"), containsFold(prefix, "ALLOW"), containsFold(prefix, "PERMIT"):
			ev.Action = record.ActionAllow
		}
	}
	var haveSrc, haveDst bool
	s := msg[i:]
	for s != "" {
		var tok string
		tok, s = nextField(s)
		k, v, ok := cut(tok, '=')
		if !ok {
			continue
		}
		switch k {
		case "IN":
			ev.InIf = v
		case "OUT":
			ev.OutIf = v
		case "SRC":
			if ev.SrcAddr, haveSrc = parseAddr(v); !haveSrc {
				return false
			}
		case "DST":
			if ev.DstAddr, haveDst = parseAddr(v); !haveDst {
				return false
			}
		case "LEN":
			if n, ok := atou(v, 1<<32); ok {
				ev.Bytes = n
				ev.Packets = 1
			}
		case "PROTO":
			n, ok := protoNumber(v)
			if !ok {
				return false
			}
			ev.Proto = n
		case "SPT":
			if ev.SrcPort, ok = atou16(v); !ok {
				return false
			}
		case "DPT":
			if ev.DstPort, ok = atou16(v); !ok {
				return false
			}
		}
	}
	return haveSrc && haveDst
}
