package firewall

import (
	"net/netip"
	"strings"
)

// atou parses a decimal unsigned integer without allocating. ok is false for
// an empty string, a non-digit or an overflow of max.
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

func atou16(s string) (uint16, bool) {
	n, ok := atou(s, 0xffff)
	return uint16(n), ok
}

// protoNumber maps a protocol name or number to its IANA number.
func protoNumber(s string) (uint8, bool) {
	if n, ok := atou(s, 255); ok {
		return uint8(n), true
	}
	switch {
	case strings.EqualFold(s, "tcp"):
		return 6, true
	case strings.EqualFold(s, "udp"):
		return 17, true
	case strings.EqualFold(s, "icmp"):
		return 1, true
	case strings.EqualFold(s, "icmpv6"), strings.EqualFold(s, "ipv6-icmp"), strings.EqualFold(s, "icmp6"):
		return 58, true
	case strings.EqualFold(s, "gre"):
		return 47, true
	case strings.EqualFold(s, "esp"):
		return 50, true
	case strings.EqualFold(s, "ah"):
		return 51, true
	case strings.EqualFold(s, "sctp"):
		return 132, true
	case strings.EqualFold(s, "udplite"):
		return 136, true
	case strings.EqualFold(s, "ospf"):
		return 89, true
	}
	return 0, false
}

// parseAddr parses an IPv4 or IPv6 address; IPv4-mapped IPv6 becomes IPv4.
func parseAddr(s string) (netip.Addr, bool) {
	if s == "" {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// cut returns the text before the first sep and the text after it.
func cut(s string, sep byte) (before, after string, found bool) {
	if i := strings.IndexByte(s, sep); i >= 0 {
		return s[:i], s[i+1:], true
	}
	return s, "", false
}

// nextField returns the next space-separated token of s and the rest.
func nextField(s string) (tok, rest string) {
	for len(s) > 0 && s[0] == ' ' {
		s = s[1:]
	}
	if i := strings.IndexByte(s, ' '); i >= 0 {
		return s[:i], s[i+1:]
	}
	return s, ""
}
