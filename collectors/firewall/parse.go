package firewall

import (
	"net/netip"
	"strings"
	"time"

	"github.com/meridian-obs/meridian/pipeline/record"
)

// Formats written to record.FirewallEvent.Format.
const (
	FormatIPTables  = "iptables" // kernel LOG lines from iptables or nftables
	FormatPANOS     = "panos"
	FormatASA       = "asa"
	FormatFortiGate = "fortigate"
	FormatUnknown   = "unknown"
)

// Reasons for malformed input, the reason label of
// meridian_firewall_malformed_total.
const (
	ReasonNoHeader   = "no_header"  // no PRI or timestamp: stored, message = whole line
	ReasonBadFields  = "bad_fields" // a known format with unreadable fields: stored as unknown
	ReasonEmpty      = "empty"      // empty frame: not stored
	ReasonTooLong    = "too_long"   // frame over max_line_bytes: not stored
	ReasonBadFrame   = "bad_frame"  // octet count unreadable: connection closed
	ReasonTooMany    = "too_many_connections"
	ReasonTLS        = "tls_handshake"
	ReasonTruncated  = "truncated" // connection closed inside an octet-counted frame
	ReasonSinkFailed = "sink_failed"
)

// PrefixAction maps a netfilter LOG prefix to an action (and a rule name and
// vendor, both optional).
type PrefixAction struct {
	Prefix string `yaml:"prefix"`
	Action string `yaml:"action"`
	Vendor string `yaml:"vendor"` // iptables (default) or nftables
}

// Parser turns syslog lines into firewall events. It is safe for concurrent
// use; Parse never allocates on the paths of the known formats (every string
// of the event is a substring of the line).
type Parser struct {
	prefixes []PrefixAction // longest prefix first
}

// NewParser returns a parser with the netfilter prefix mapping.
func NewParser(prefixes []PrefixAction) *Parser {
	p := &Parser{prefixes: append([]PrefixAction(nil), prefixes...)}
	// Longest first, so "DROP-SSH" wins over "DROP".
	for i := 1; i < len(p.prefixes); i++ {
		for j := i; j > 0 && len(p.prefixes[j].Prefix) > len(p.prefixes[j-1].Prefix); j-- {
			p.prefixes[j], p.prefixes[j-1] = p.prefixes[j-1], p.prefixes[j]
		}
	}
	return p
}

// Parse fills ev from one syslog line (without its framing). ev is reset
// first; ReceivedAt, Device fallback and enrichment are the caller's. The
// returned reason is "" for a clean line, else a malformed-input reason to
// count; the event is filled either way (Format "unknown" when no parser knew
// the line) and Raw always holds the line.
func (p *Parser) Parse(line string, now time.Time, ev *record.FirewallEvent) (reason string) {
	*ev = record.FirewallEvent{Raw: line, Vendor: FormatUnknown, Format: FormatUnknown, Action: record.ActionUnknown}
	h, ok := parseHeader(line, now)
	if !ok {
		reason = ReasonNoHeader
	}
	ev.Time = h.Time
	ev.Device = h.Host
	msg := h.Msg
	var good, known bool
	switch {
	case strings.Contains(msg, "%ASA-") || strings.Contains(msg, "%FTD-"):
		known = true
		ev.Vendor = "asa"
		good = parseASA(msg, ev)
	case strings.Contains(msg, "IN=") && strings.Contains(msg, " SRC="):
		known = true
		good = p.parseNetfilter(msg, ev)
	case isPANOSTraffic(msg):
		known = true
		good = parsePANOS(msg, ev)
	case strings.HasPrefix(msg, "date=") || strings.Contains(msg, " logid=") || strings.HasPrefix(msg, "logver="):
		ev.Vendor = "fortigate"
		if isFortiTraffic(msg) {
			known = true
			good = parseFortiGate(msg, ev)
		}
	}
	if known && !good {
		// Keep what identifies the line; drop half-read fields.
		vendor := ev.Vendor
		*ev = record.FirewallEvent{Raw: line, Time: h.Time, Device: h.Host, Vendor: vendor, Format: FormatUnknown, Action: record.ActionUnknown}
		if reason == "" {
			reason = ReasonBadFields
		}
	}
	if ev.Time.IsZero() {
		ev.Time = now
	}
	return reason
}

// containsFold reports whether s contains the upper-case ASCII word sub,
// ignoring the case of s.
func containsFold(s, sub string) bool {
	n := len(sub)
	for i := 0; i+n <= len(s); i++ {
		j := 0
		for ; j < n; j++ {
			c := s[i+j]
			if c >= 'a' && c <= 'z' {
				c -= 'a' - 'A'
			}
			if c != sub[j] {
				break
			}
		}
		if j == n {
			return true
		}
	}
	return false
}

// setAddr parses s into *dst; "-", "" and unspecified addresses leave it unset.
func setAddr(dst *netip.Addr, s string) bool {
	if s == "" || s == "-" {
		return true
	}
	a, ok := parseAddr(s)
	if !ok {
		return false
	}
	if !a.IsUnspecified() {
		*dst = a
	}
	return true
}
