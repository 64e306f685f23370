package firewall

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/meridian-obs/meridian/pipeline/record"
)

var testNow = time.Date(2024, 1, 15, 12, 0, 0, 0, time.UTC)

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

func testParser() *Parser {
	return NewParser([]PrefixAction{
		{Prefix: "NFT-DROP", Action: record.ActionDrop, Vendor: "nftables"},
		{Prefix: "FW-IN", Action: record.ActionAllow},
		{Prefix: "FW-IN-BLOCK", Action: record.ActionDeny},
	})
}

func TestParse(t *testing.T) {
	ts := time.Date(2024, 1, 15, 10, 0, 1, 0, time.UTC)
	tests := []struct {
		name   string
		line   string
		want   record.FirewallEvent
		reason string
	}{
		{
			name: "iptables 3164 kernel drop",
			line: "<4>Jan 15 10:00:01 gw1 kernel: [123456.789012] DROP-IN: IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00 SRC=203.0.113.9 DST=198.51.100.2 LEN=60 TOS=0x00 PREC=0x00 TTL=52 ID=54321 DF PROTO=TCP SPT=51514 DPT=22 WINDOW=64240 RES=0x00 SYN URGP=0",
			want: record.FirewallEvent{Time: ts, Device: "gw1", Vendor: "iptables", Format: "iptables", Action: "drop",
				SrcAddr: ip("203.0.113.9"), DstAddr: ip("198.51.100.2"), SrcPort: 51514, DstPort: 22, Proto: 6,
				Rule: "DROP-IN", InIf: "eth0", Bytes: 60, Packets: 1},
		},
		{
			name: "nftables ipv6 mapped prefix",
			line: "<4>Jan 15 10:00:01 gw1 kernel: NFT-DROP6 IN=eth1 OUT=eth0 SRC=2001:db8::5 DST=2001:db8:1::9 LEN=104 TC=0 HOPLIMIT=63 FLOWLBL=0 PROTO=ICMPv6 TYPE=128 CODE=0 ID=1 SEQ=1",
			want: record.FirewallEvent{Time: ts, Device: "gw1", Vendor: "nftables", Format: "iptables", Action: "drop",
				SrcAddr: ip("2001:db8::5"), DstAddr: ip("2001:db8:1::9"), Proto: 58,
				Rule: "NFT-DROP6", InIf: "eth1", OutIf: "eth0", Bytes: 104, Packets: 1},
		},
		{
			name: "iptables longest configured prefix wins, udp",
			line: "<4>Jan 15 10:00:01 gw1 kernel: FW-IN-BLOCK: IN=eth0 OUT= SRC=192.0.2.1 DST=192.0.2.2 LEN=76 PROTO=UDP SPT=123 DPT=123 LEN=56",
			want: record.FirewallEvent{Time: ts, Device: "gw1", Vendor: "iptables", Format: "iptables", Action: "deny",
				SrcAddr: ip("192.0.2.1"), DstAddr: ip("192.0.2.2"), SrcPort: 123, DstPort: 123, Proto: 17,
				Rule: "FW-IN-BLOCK", InIf: "eth0", Bytes: 56, Packets: 1},
		},
		{
			name: "iptables 5424 reject with numeric proto",
			line: "<12>1 2024-01-15T10:00:01.000Z gw2 kernel - - - REJECT-OUT IN= OUT=eth0 SRC=10.0.0.1 DST=10.0.0.2 LEN=40 PROTO=47",
			want: record.FirewallEvent{Time: ts, Device: "gw2", Vendor: "iptables", Format: "iptables", Action: "reject",
				SrcAddr: ip("10.0.0.1"), DstAddr: ip("10.0.0.2"), Proto: 47, Rule: "REJECT-OUT", OutIf: "eth0", Bytes: 40, Packets: 1},
		},
		{
			name: "panos traffic end with quoted rule holding comma and braces",
			line: `<14>Jan 15 10:00:01 pa-fw1 1,2024/01/15 10:00:01,012801096514,TRAFFIC,end,2560,2024/01/15 10:00:01,10.1.1.10,8.8.8.8,203.0.113.5,8.8.8.8,"allow, dns {out} ""v2""",,,dns-base,vsys1,trust,untrust,ethernet1/2,ethernet1/1,default,,12345,1,51514,53,40001,53,0x400019,udp,allow,220,90,130,2,2024/01/15 09:59:59,0,any,,7301234567890,0x0,10.0.0.0-10.255.255.255,United States,,1,1,aged-out,0,0,0,0,,pa-fw1,from-policy,,,0,,0,,N/A,0,0,0,0`,
			want: record.FirewallEvent{Time: ts, Device: "pa-fw1", Vendor: "panos", Format: "panos", Action: "allow",
				SrcAddr: ip("10.1.1.10"), DstAddr: ip("8.8.8.8"), SrcPort: 51514, DstPort: 53, Proto: 17,
				Rule: `allow, dns {out} "v2"`, InIf: "ethernet1/2", OutIf: "ethernet1/1", Bytes: 220, Packets: 2,
				NATSrcAddr: ip("203.0.113.5"), NATDstAddr: ip("8.8.8.8"), NATSrcPort: 40001, NATDstPort: 53},
		},
		{
			name: "panos without hostname",
			line: `<14>Jan 15 10:00:01 1,2024/01/15 10:00:01,012801096514,TRAFFIC,drop,2560,2024/01/15 10:00:01,198.51.100.7,10.1.1.20,0.0.0.0,0.0.0.0,block,,,not-applicable,vsys1,untrust,trust,ethernet1/1,,default,,0,1,44123,445,0,0,0x0,tcp,drop,60,60,0,1,2024/01/15 10:00:01,0,any`,
			want: record.FirewallEvent{Time: ts, Vendor: "panos", Format: "panos", Action: "drop",
				SrcAddr: ip("198.51.100.7"), DstAddr: ip("10.1.1.20"), SrcPort: 44123, DstPort: 445, Proto: 6,
				Rule: "block", InIf: "ethernet1/1", Bytes: 60, Packets: 1},
		},
		{
			name: "panos deny without nat",
			line: `<14>1 2024-01-15T10:00:01Z pa-fw2 - - - - 1,2024/01/15 10:00:01,012801096514,TRAFFIC,deny,2560,2024/01/15 10:00:01,198.51.100.7,10.1.1.20,0.0.0.0,0.0.0.0,block-inbound,,,not-applicable,vsys1,untrust,trust,ethernet1/1,,default,,0,1,44123,3389,0,0,0x0,tcp,reset-both,74,74,0,1,2024/01/15 10:00:01,0,any,,7301234567891,0x0,US,10.0.0.0-10.255.255.255,,1,0,policy-deny`,
			want: record.FirewallEvent{Time: ts, Device: "pa-fw2", Vendor: "panos", Format: "panos", Action: "reject",
				SrcAddr: ip("198.51.100.7"), DstAddr: ip("10.1.1.20"), SrcPort: 44123, DstPort: 3389, Proto: 6,
				Rule: "block-inbound", InIf: "ethernet1/1", Bytes: 74, Packets: 1},
		},
		{
			name: "asa 106023 deny",
			line: `<164>Jan 15 2024 10:00:01 asa1 : %ASA-4-106023: Deny tcp src outside:198.51.100.7/5000 dst inside:10.0.0.5/22 by access-group "outside_in" [0x0, 0x0]`,
			want: record.FirewallEvent{Time: ts, Device: "asa1", Vendor: "asa", Format: "asa", Action: "deny",
				SrcAddr: ip("198.51.100.7"), DstAddr: ip("10.0.0.5"), SrcPort: 5000, DstPort: 22, Proto: 6,
				Rule: "outside_in", InIf: "outside", OutIf: "inside"},
		},
		{
			name: "asa 106023 icmp no ports",
			line: `<164>Jan 15 10:00:01 asa1 %ASA-4-106023: Deny icmp src outside:2001:db8::7 dst inside:2001:db8:1::5 (type 128, code 0) by access-group "v6_in" [0x0, 0x0]`,
			want: record.FirewallEvent{Time: ts, Device: "asa1", Vendor: "asa", Format: "asa", Action: "deny",
				SrcAddr: ip("2001:db8::7"), DstAddr: ip("2001:db8:1::5"), Proto: 1, Rule: "v6_in", InIf: "outside", OutIf: "inside"},
		},
		{
			name: "asa 106100 permitted",
			line: `<166>Jan 15 10:00:01 asa1 %ASA-6-106100: access-list inside_out permitted udp inside/10.0.0.5(51234) -> outside/8.8.8.8(53) hit-cnt 1 first hit [0x91c26a3, 0x0]`,
			want: record.FirewallEvent{Time: ts, Device: "asa1", Vendor: "asa", Format: "asa", Action: "allow",
				SrcAddr: ip("10.0.0.5"), DstAddr: ip("8.8.8.8"), SrcPort: 51234, DstPort: 53, Proto: 17, Rule: "inside_out", InIf: "inside", OutIf: "outside"},
		},
		{
			name: "asa 302013 built inbound with static nat",
			line: `<166>Jan 15 10:00:01 asa1 %ASA-6-302013: Built inbound TCP connection 4711 for outside:198.51.100.7/5000 (198.51.100.7/5000) to inside:10.0.0.5/443 (203.0.113.5/443)`,
			want: record.FirewallEvent{Time: ts, Device: "asa1", Vendor: "asa", Format: "asa", Action: "allow",
				SrcAddr: ip("198.51.100.7"), DstAddr: ip("10.0.0.5"), SrcPort: 5000, DstPort: 443, Proto: 6, InIf: "outside", OutIf: "inside",
				NATDstAddr: ip("203.0.113.5"), NATDstPort: 443},
		},
		{
			name: "asa 302015 built outbound with pat and identity",
			line: `<166>Jan 15 10:00:01 asa1 %ASA-6-302015: Built outbound UDP connection 99 for outside:8.8.8.8/53 (8.8.8.8/53) to inside:10.0.0.5/51234 (203.0.113.1/40000)(LOCAL\alice)`,
			want: record.FirewallEvent{Time: ts, Device: "asa1", Vendor: "asa", Format: "asa", Action: "allow",
				SrcAddr: ip("10.0.0.5"), DstAddr: ip("8.8.8.8"), SrcPort: 51234, DstPort: 53, Proto: 17, InIf: "inside", OutIf: "outside",
				NATSrcAddr: ip("203.0.113.1"), NATSrcPort: 40000},
		},
		{
			name: "asa 302014 teardown with bytes",
			line: `<166>Jan 15 10:00:01 asa1 %ASA-6-302014: Teardown TCP connection 4711 for outside:198.51.100.7/5000 to inside:10.0.0.5/443 duration 0:00:30 bytes 6543 TCP FINs`,
			want: record.FirewallEvent{Time: ts, Device: "asa1", Vendor: "asa", Format: "asa", Action: "allow",
				SrcAddr: ip("198.51.100.7"), DstAddr: ip("10.0.0.5"), SrcPort: 5000, DstPort: 443, Proto: 6, InIf: "outside", OutIf: "inside", Bytes: 6543},
		},
		{
			name: "asa 302016 teardown udp with user",
			line: `<166>Jan 15 10:00:01 asa1 %ASA-6-302016: Teardown UDP connection 99 for outside:8.8.8.8/53 to inside:10.0.0.5/51234 (LOCAL\alice) duration 0:02:01 bytes 120`,
			want: record.FirewallEvent{Time: ts, Device: "asa1", Vendor: "asa", Format: "asa", Action: "allow",
				SrcAddr: ip("8.8.8.8"), DstAddr: ip("10.0.0.5"), SrcPort: 53, DstPort: 51234, Proto: 17, InIf: "outside", OutIf: "inside", Bytes: 120},
		},
		{
			name: "asa 305011 nat",
			line: `<166>Jan 15 10:00:01 asa1 %ASA-6-305011: Built dynamic TCP translation from inside:192.168.1.10/51234 to outside:203.0.113.1/40000`,
			want: record.FirewallEvent{Time: ts, Device: "asa1", Vendor: "asa", Format: "asa", Action: "allow",
				SrcAddr: ip("192.168.1.10"), SrcPort: 51234, Proto: 6, InIf: "inside", OutIf: "outside",
				NATSrcAddr: ip("203.0.113.1"), NATSrcPort: 40000},
		},
		{
			name: "asa unknown id kept",
			line: `<166>Jan 15 10:00:01 asa1 %ASA-6-725001: Starting SSL handshake with client outside:198.51.100.7/443`,
			want: record.FirewallEvent{Time: ts, Device: "asa1", Vendor: "asa", Format: "unknown", Action: "unknown"},
		},
		{
			name: "fortigate traffic without syslog timestamp",
			line: `<189>date=2024-01-15 time=11:00:01 devname="FGT60E" devid="FGT60ETK1800000" eventtime=1705312801000000000 tz="+0100" logid="0000000013" type="traffic" subtype="forward" level="notice" vd="root" srcip=10.1.1.10 srcport=51514 srcintf="port2" srcintfrole="lan" dstip=8.8.8.8 dstport=53 dstintf="wan1" dstintfrole="wan" srccountry="Reserved" dstcountry="United States" sessionid=12345 proto=17 action="accept" policyid=3 policyname="lan out" service="DNS" trandisp="snat" transip=203.0.113.5 transport=40001 duration=180 sentbyte=90 rcvdbyte=130 sentpkt=1 rcvdpkt=1 appcat="unscanned"`,
			want: record.FirewallEvent{Time: ts, Device: "FGT60E", Vendor: "fortigate", Format: "fortigate", Action: "allow",
				SrcAddr: ip("10.1.1.10"), DstAddr: ip("8.8.8.8"), SrcPort: 51514, DstPort: 53, Proto: 17, Rule: "lan out",
				InIf: "port2", OutIf: "wan1", Bytes: 220, Packets: 2, NATSrcAddr: ip("203.0.113.5"), NATSrcPort: 40001},
			reason: ReasonNoHeader,
		},
		{
			name: "fortigate deny with 3164 header and policy id only",
			line: `<189>Jan 15 10:00:01 fgt2 date=2024-01-15 time=10:00:01 devname="FGT-B" type="traffic" subtype="forward" srcip=198.51.100.9 srcport=40000 dstip=10.2.0.1 dstport=23 proto=6 action="deny" policyid=0 sentbyte=0 rcvdbyte=0`,
			want: record.FirewallEvent{Time: ts, Device: "FGT-B", Vendor: "fortigate", Format: "fortigate", Action: "deny",
				SrcAddr: ip("198.51.100.9"), DstAddr: ip("10.2.0.1"), SrcPort: 40000, DstPort: 23, Proto: 6, Rule: "0"},
		},
		{
			name:   "fortigate event log is unknown format",
			line:   `<189>date=2024-01-15 time=10:00:01 devname="FGT60E" logid="0100032001" type="event" subtype="system" msg="Administrator admin logged in"`,
			want:   record.FirewallEvent{Time: testNow, Vendor: "fortigate", Format: "unknown", Action: "unknown"},
			reason: ReasonNoHeader,
		},
		{
			name: "unknown line keeps header",
			line: "<13>Jan 15 10:00:01 web1 sshd[123]: Accepted publickey for root",
			want: record.FirewallEvent{Time: ts, Device: "web1", Vendor: "unknown", Format: "unknown", Action: "unknown"},
		},
		{
			name:   "garbage without header",
			line:   "\x00\xffnot syslog at all",
			want:   record.FirewallEvent{Time: testNow, Vendor: "unknown", Format: "unknown", Action: "unknown"},
			reason: ReasonNoHeader,
		},
		{
			name:   "iptables with bad address becomes unknown and counted",
			line:   "<4>Jan 15 10:00:01 gw1 kernel: DROP IN=eth0 OUT= SRC=300.1.2.3 DST=10.0.0.1 PROTO=TCP SPT=1 DPT=2",
			want:   record.FirewallEvent{Time: ts, Device: "gw1", Vendor: "iptables", Format: "unknown", Action: "unknown"},
			reason: ReasonBadFields,
		},
		{
			name:   "panos truncated becomes unknown and counted",
			line:   `<14>Jan 15 10:00:01 pa-fw1 1,2024/01/15 10:00:01,012801096514,TRAFFIC,end,2560,2024/01/15 10:00:01,10.1.1.10,8.8.8.8`,
			want:   record.FirewallEvent{Time: ts, Device: "pa-fw1", Vendor: "panos", Format: "unknown", Action: "unknown"},
			reason: ReasonBadFields,
		},
	}
	p := testParser()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ev record.FirewallEvent
			reason := p.Parse(tt.line, testNow, &ev)
			tt.want.Raw = tt.line
			if diff := cmp.Diff(tt.want, ev, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("event (-want +got):\n%s", diff)
			}
			if reason != tt.reason {
				t.Errorf("reason %q, want %q", reason, tt.reason)
			}
		})
	}
}

func TestParseHeader(t *testing.T) {
	tests := []struct {
		line           string
		kind           int
		host, app, msg string
		time           time.Time
		ok             bool
	}{
		{"<13>Jan  5 03:04:05 h1 app[12]: hello world", syslog3164, "h1", "app", "hello world", time.Date(2024, 1, 5, 3, 4, 5, 0, time.UTC), true},
		{"<13>Dec 31 23:59:59 h1 app: late", syslog3164, "h1", "app", "late", time.Date(2023, 12, 31, 23, 59, 59, 0, time.UTC), true},
		{"<13>Jan 15 10:00:00.250 h1 app: ms", syslog3164, "h1", "app", "ms", time.Date(2024, 1, 15, 10, 0, 0, 250e6, time.UTC), true},
		{"<13>Jan 15 10:00:00 kernel: no host", syslog3164, "", "kernel", "no host", time.Date(2024, 1, 15, 10, 0, 0, 0, time.UTC), true},
		{"<13>2024-01-15T10:00:00+01:00 h2 app: rfc3339 in 3164", syslog3164, "h2", "app", "rfc3339 in 3164", time.Date(2024, 1, 15, 9, 0, 0, 0, time.UTC), true},
		{`<165>1 2024-01-15T10:00:00.123456Z h3 app 42 ID7 [ex@32473 k="v \"]\" x"][b@1 a="1"] ` + "\uFEFF" + "msg here", syslog5424, "h3", "app", "msg here", time.Date(2024, 1, 15, 10, 0, 0, 123456000, time.UTC), true},
		{"<165>1 - - - - - -", syslog5424, "", "", "", time.Time{}, true},
		{"<165>1 2024-01-15T10:00:00Z h3 app - - [unterminated", syslogNone, "", "", "1 2024-01-15T10:00:00Z h3 app - - [unterminated", time.Time{}, false},
		{"no pri here", syslogNone, "", "", "no pri here", time.Time{}, false},
		{"<999>Jan 15 10:00:00 h app: bad pri", syslog3164, "", "", "<999>Jan 15 10:00:00 h app: bad pri", time.Time{}, false},
	}
	for _, tt := range tests {
		h, ok := parseHeader(tt.line, testNow)
		if h.Kind != tt.kind || h.Host != tt.host || h.App != tt.app || h.Msg != tt.msg || !h.Time.Equal(tt.time) || ok != tt.ok {
			// The "<999>" case: the PRI is invalid so the header cannot be
			// read from there; the line stays whole.
			if tt.line[1] == '9' && !ok && h.Msg == tt.line {
				continue
			}
			t.Errorf("%q:\n got kind %d host %q app %q msg %q time %v ok %v\nwant kind %d host %q app %q msg %q time %v ok %v",
				tt.line, h.Kind, h.Host, h.App, h.Msg, h.Time, ok, tt.kind, tt.host, tt.app, tt.msg, tt.time, tt.ok)
		}
	}
}

func TestPrefixTable(t *testing.T) {
	var tb PrefixTable
	tb.Add(netip.MustParsePrefix("10.0.0.0/8"), Location{"eu", "any"})
	tb.Add(netip.MustParsePrefix("10.1.0.0/16"), Location{"eu", "fra1"})
	tb.Add(netip.MustParsePrefix("2001:db8::/32"), Location{"us", "v6"})
	tb.Add(netip.MustParsePrefix("2001:db8:1::/48"), Location{"us", "iad1"})
	for _, c := range []struct {
		a    string
		want Location
		ok   bool
	}{
		{"10.1.2.3", Location{"eu", "fra1"}, true},
		{"10.2.2.3", Location{"eu", "any"}, true},
		{"::ffff:10.1.0.1", Location{"eu", "fra1"}, true},
		{"2001:db8:1::9", Location{"us", "iad1"}, true},
		{"2001:db8:2::9", Location{"us", "v6"}, true},
		{"192.0.2.1", Location{}, false},
	} {
		got, ok := tb.Lookup(ip(c.a))
		if got != c.want || ok != c.ok {
			t.Errorf("%s: got %v %v, want %v %v", c.a, got, ok, c.want, c.ok)
		}
	}
}
