package firewall

import (
	"net/netip"
	"strings"

	"github.com/meridian-obs/meridian/pipeline/record"
)

// parseASA reads the Cisco ASA (and FTD) messages Meridian understands:
// 106023 and 106100 (ACL verdicts), 302013–302016 (TCP/UDP connection built
// and teardown, with bytes) and 305011 (dynamic NAT). Other message IDs are
// stored with Vendor "asa" and Format "unknown".
func parseASA(msg string, ev *record.FirewallEvent) bool {
	i := strings.Index(msg, "%ASA-")
	if i < 0 {
		i = strings.Index(msg, "%FTD-")
	}
	s := msg[i+5:] // "6-302013: Built …"
	_, s, _ = cut(s, '-')
	id, body, ok := cut(s, ':')
	if !ok {
		return false
	}
	body = strings.TrimLeft(body, " ")
	switch id {
	case "106023":
		return asa106023(body, ev)
	case "106100":
		return asa106100(body, ev)
	case "302013", "302015":
		return asaBuilt(body, ev)
	case "302014", "302016":
		return asaTeardown(body, ev)
	case "305011":
		return asa305011(body, ev)
	}
	// A message we do not read: vendor known, format unknown, not malformed.
	ev.Format = FormatUnknown
	return true
}

// asaEndpoint reads "iface:addr/port" (port optional). Interface names hold
// no colon, IPv6 addresses do: the first colon ends the interface.
func asaEndpoint(s string) (iface string, a netip.Addr, port uint16, ok bool) {
	iface, s, found := cut(s, ':')
	if !found {
		return "", a, 0, false
	}
	a, port, ok = asaAddrPort(s, '/')
	return iface, a, port, ok
}

// asaAddrPort reads "addr<sep>port" or "addr".
func asaAddrPort(s string, sep byte) (netip.Addr, uint16, bool) {
	addr, p := s, ""
	if i := strings.LastIndexByte(s, sep); i >= 0 {
		addr, p = s[:i], s[i+1:]
	}
	a, ok := parseAddr(addr)
	if !ok {
		return a, 0, false
	}
	if p == "" {
		return a, 0, true
	}
	n, ok := atou16(p)
	return a, n, ok
}

// asa106023: Deny tcp src outside:198.51.100.7/5000 dst inside:10.0.0.5/22 by access-group "outside_in" [0x0, 0x0]
func asa106023(s string, ev *record.FirewallEvent) bool {
	verb, s := nextField(s)
	if verb != "Deny" {
		return false
	}
	ev.Action = record.ActionDeny
	proto, s := nextField(s)
	if proto == "protocol" {
		proto, s = nextField(s)
	}
	var ok bool
	if ev.Proto, ok = protoNumber(proto); !ok {
		return false
	}
	var tok string
	if tok, s = nextField(s); tok != "src" {
		return false
	}
	tok, s = nextField(s)
	if ev.InIf, ev.SrcAddr, ev.SrcPort, ok = asaEndpoint(tok); !ok {
		return false
	}
	if tok, s = nextField(s); tok != "dst" {
		return false
	}
	tok, s = nextField(s)
	if ev.OutIf, ev.DstAddr, ev.DstPort, ok = asaEndpoint(tok); !ok {
		return false
	}
	if i := strings.Index(s, `access-group "`); i >= 0 {
		r := s[i+len(`access-group "`):]
		if j := strings.IndexByte(r, '"'); j >= 0 {
			ev.Rule = r[:j]
		}
	}
	ev.Format = FormatASA
	return true
}

// asa106100: access-list outside_in denied tcp outside/198.51.100.7(5000) -> inside/10.0.0.5(22) hit-cnt 1 first hit [0x91c26a3, 0x0]
func asa106100(s string, ev *record.FirewallEvent) bool {
	tok, s := nextField(s)
	if tok != "access-list" {
		return false
	}
	ev.Rule, s = nextField(s)
	verdict, s := nextField(s)
	switch verdict {
	case "permitted", "est-allowed":
		ev.Action = record.ActionAllow
	case "denied":
		ev.Action = record.ActionDeny
	default:
		return false
	}
	proto, s := nextField(s)
	var ok bool
	if ev.Proto, ok = protoNumber(proto); !ok {
		return false
	}
	end := func(t string) (string, netip.Addr, uint16, bool) {
		iface, rest, found := cut(t, '/')
		if !found {
			return "", netip.Addr{}, 0, false
		}
		addr, port := rest, ""
		if i := strings.IndexByte(rest, '('); i >= 0 && strings.HasSuffix(rest, ")") {
			addr, port = rest[:i], rest[i+1:len(rest)-1]
		}
		a, good := parseAddr(addr)
		if !good {
			return "", a, 0, false
		}
		n, good := atou16(port)
		return iface, a, n, good
	}
	tok, s = nextField(s)
	if ev.InIf, ev.SrcAddr, ev.SrcPort, ok = end(tok); !ok {
		return false
	}
	if tok, s = nextField(s); tok != "->" {
		return false
	}
	tok, _ = nextField(s)
	if ev.OutIf, ev.DstAddr, ev.DstPort, ok = end(tok); !ok {
		return false
	}
	ev.Format = FormatASA
	return true
}

// asaConn reads the "for A [(mapped)] [(user)] to B [(mapped)] [(user)]" part
// of 302013–302016 and the words after it.
func asaConn(s string) (ifA string, a, am netip.Addr, pa, pam uint16, ifB string, b, bm netip.Addr, pb, pbm uint16, rest string, ok bool) {
	tok, s := nextField(s)
	if tok != "for" {
		return
	}
	tok, s = nextField(s)
	if ifA, a, pa, ok = asaEndpoint(tok); !ok {
		return
	}
	am, pam = a, pa
	ok = false
	for {
		tok, s = nextField(s)
		if tok == "to" {
			break
		}
		if tok == "" {
			return
		}
		if m, p, good := asaMapped(tok); good {
			am, pam = m, p
		}
	}
	tok, s = nextField(s)
	if ifB, b, pb, ok = asaEndpoint(tok); !ok {
		return
	}
	bm, pbm = b, pb
	for len(s) > 0 && s[0] == '(' {
		tok, rest := nextField(s)
		if m, p, good := asaMapped(tok); good {
			bm, pbm = m, p
		}
		s = rest
	}
	return ifA, a, am, pa, pam, ifB, b, bm, pb, pbm, s, true
}

// asaMapped finds a "(addr/port)" group in a token such as
// "(203.0.113.1/40000)(LOCAL\alice)"; identity groups are skipped.
func asaMapped(tok string) (netip.Addr, uint16, bool) {
	for len(tok) > 2 && tok[0] == '(' {
		end := strings.IndexByte(tok, ')')
		if end < 0 {
			break
		}
		if m, p, ok := asaAddrPort(tok[1:end], '/'); ok {
			return m, p, true
		}
		tok = tok[end+1:]
	}
	return netip.Addr{}, 0, false
}

// asaBuilt: Built inbound TCP connection 123 for outside:198.51.100.7/5000 (198.51.100.7/5000) to inside:10.0.0.5/22 (203.0.113.5/22)
//
// Inbound: the "for" side initiated (source). Outbound: the "to" side (the
// inside host) initiated. Source and destination are the real addresses;
// the NAT fields hold the mapped counterpart where it differs.
func asaBuilt(s string, ev *record.FirewallEvent) bool {
	tok, s := nextField(s)
	if tok != "Built" {
		return false
	}
	dir, s := nextField(s)
	proto, s := nextField(s)
	var ok bool
	if ev.Proto, ok = protoNumber(proto); !ok {
		return false
	}
	if tok, s = nextField(s); tok != "connection" {
		return false
	}
	_, s = nextField(s) // connection id
	ifA, a, am, pa, pam, ifB, b, bm, pb, pbm, _, ok := asaConn(s)
	if !ok {
		return false
	}
	switch dir {
	case "inbound":
	case "outbound":
		ifA, a, am, pa, pam, ifB, b, bm, pb, pbm = ifB, b, bm, pb, pbm, ifA, a, am, pa, pam
	default:
		return false
	}
	ev.InIf, ev.SrcAddr, ev.SrcPort = ifA, a, pa
	ev.OutIf, ev.DstAddr, ev.DstPort = ifB, b, pb
	if am != a || pam != pa {
		ev.NATSrcAddr, ev.NATSrcPort = am, pam
	}
	if bm != b || pbm != pb {
		ev.NATDstAddr, ev.NATDstPort = bm, pbm
	}
	ev.Action = record.ActionAllow
	ev.Format = FormatASA
	return true
}

// asaTeardown: Teardown TCP connection 123 for outside:198.51.100.7/5000 to inside:10.0.0.5/22 duration 0:00:30 bytes 6543 TCP FINs
//
// A teardown carries no direction: source and destination keep the
// message's order ("for" then "to").
func asaTeardown(s string, ev *record.FirewallEvent) bool {
	tok, s := nextField(s)
	if tok != "Teardown" {
		return false
	}
	proto, s := nextField(s)
	var ok bool
	if ev.Proto, ok = protoNumber(proto); !ok {
		return false
	}
	if tok, s = nextField(s); tok != "connection" {
		return false
	}
	_, s = nextField(s)
	ifA, a, _, pa, _, ifB, b, _, pb, _, rest, ok := asaConn(s)
	if !ok {
		return false
	}
	ev.InIf, ev.SrcAddr, ev.SrcPort = ifA, a, pa
	ev.OutIf, ev.DstAddr, ev.DstPort = ifB, b, pb
	if i := strings.Index(rest, "bytes "); i >= 0 {
		n, _ := nextField(rest[i+6:])
		if ev.Bytes, ok = atou(n, 1<<63); !ok {
			return false
		}
	}
	ev.Action = record.ActionAllow
	ev.Format = FormatASA
	return true
}

// asa305011: Built dynamic TCP translation from inside:192.168.1.10/51234 to outside:203.0.113.1/40000
func asa305011(s string, ev *record.FirewallEvent) bool {
	tok, s := nextField(s)
	if tok != "Built" {
		return false
	}
	_, s = nextField(s) // dynamic, static
	proto, s := nextField(s)
	var ok bool
	if ev.Proto, ok = protoNumber(proto); !ok {
		return false
	}
	if tok, s = nextField(s); tok != "translation" {
		return false
	}
	if tok, s = nextField(s); tok != "from" {
		return false
	}
	tok, s = nextField(s)
	if ev.InIf, ev.SrcAddr, ev.SrcPort, ok = asaEndpoint(tok); !ok {
		return false
	}
	if tok, s = nextField(s); tok != "to" {
		return false
	}
	tok, _ = nextField(s)
	if ev.OutIf, ev.NATSrcAddr, ev.NATSrcPort, ok = asaEndpoint(tok); !ok {
		return false
	}
	ev.Action = record.ActionAllow
	ev.Format = FormatASA
	return true
}
