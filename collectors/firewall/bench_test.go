package firewall

import (
	"testing"
	"time"

	"github.com/meridian-obs/meridian/pipeline/record"
)

var benchLines = []struct{ name, line, format string }{
	{"iptables", "<4>Jan 15 10:00:01 gw1 kernel: [123456.789012] DROP-IN: IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00 SRC=203.0.113.9 DST=198.51.100.2 LEN=60 TOS=0x00 PREC=0x00 TTL=52 ID=54321 DF PROTO=TCP SPT=51514 DPT=22 WINDOW=64240 RES=0x00 SYN URGP=0", FormatIPTables},
	{"panos", `<14>Jan 15 10:00:01 pa-fw1 1,2024/01/15 10:00:01,012801096514,TRAFFIC,end,2560,2024/01/15 10:00:01,10.1.1.10,8.8.8.8,203.0.113.5,8.8.8.8,"allow, dns {out}",,,dns-base,vsys1,trust,untrust,ethernet1/2,ethernet1/1,default,,12345,1,51514,53,40001,53,0x400019,udp,allow,220,90,130,2,2024/01/15 09:59:59,0,any,,7301234567890,0x0,10.0.0.0-10.255.255.255,United States,,1,1,aged-out,0,0,0,0,,pa-fw1,from-policy,,,0,,0,,N/A,0,0,0,0`, FormatPANOS},
	{"asa-302013", `<166>Jan 15 10:00:01 asa1 %ASA-6-302013: Built inbound TCP connection 4711 for outside:198.51.100.7/5000 (198.51.100.7/5000) to inside:10.0.0.5/443 (203.0.113.5/443)`, FormatASA},
	{"asa-106023", `<164>Jan 15 2024 10:00:01 asa1 : %ASA-4-106023: Deny tcp src outside:198.51.100.7/5000 dst inside:10.0.0.5/22 by access-group "outside_in" [0x0, 0x0]`, FormatASA},
	{"fortigate", `<189>date=2024-01-15 time=11:00:01 devname="FGT60E" devid="FGT60ETK1800000" eventtime=1705312801000000000 tz="+0100" logid="0000000013" type="traffic" subtype="forward" level="notice" vd="root" srcip=10.1.1.10 srcport=51514 srcintf="port2" srcintfrole="lan" dstip=8.8.8.8 dstport=53 dstintf="wan1" dstintfrole="wan" srccountry="Reserved" dstcountry="United States" sessionid=12345 proto=17 action="accept" policyid=3 policyname="lan out" service="DNS" trandisp="snat" transip=203.0.113.5 transport=40001 duration=180 sentbyte=90 rcvdbyte=130 sentpkt=1 rcvdpkt=1 appcat="unscanned"`, FormatFortiGate},
	{"rfc5424-iptables", `<4>1 2024-01-15T10:00:01.123456Z gw1 kernel - - [meta seq="1"] DROP-IN: IN=eth0 OUT= SRC=2001:db8::5 DST=2001:db8:1::9 LEN=104 PROTO=UDP SPT=5353 DPT=53`, FormatIPTables},
	{"unknown", "<13>Jan 15 10:00:01 web1 sshd[123]: Accepted publickey for root from 192.0.2.1 port 50000 ssh2", FormatUnknown},
}

// BenchmarkParse measures parse (header, format detection, fields) per line
// and format, on one goroutine.
func BenchmarkParse(b *testing.B) {
	p := testParser()
	now := time.Now()
	for _, l := range benchLines {
		b.Run(l.name, func(b *testing.B) {
			var ev record.FirewallEvent
			if p.Parse(l.line, now, &ev); ev.Format != l.format {
				b.Fatalf("format %q, want %q", ev.Format, l.format)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(l.line)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				p.Parse(l.line, now, &ev)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
		})
	}
}

// BenchmarkBatchAdd measures the per-line work of a reader: copy into the
// arena, parse, enrich, count.
func BenchmarkBatchAdd(b *testing.B) {
	cfg := DefaultConfig()
	cfg.Networks = []NetworkConfig{{CIDR: "127.0.0.0/8", Region: "r", Site: "s"}}
	c, err := New(cfg, Deps{Sink: record.SinkFunc[record.FirewallEvent](nil)})
	if err != nil {
		b.Fatal(err)
	}
	lines := make([][]byte, len(benchLines))
	for i, l := range benchLines {
		lines[i] = []byte(l.line)
	}
	bt := &batch{c: c, rows: make([]record.FirewallEvent, 0, 1024)}
	src := ip("127.0.0.1")
	now := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		bt.add(lines[i%len(lines)], "127.0.0.1", src, now)
		if len(bt.rows) == cap(bt.rows) {
			clear(bt.rows)
			bt.rows = bt.rows[:0]
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}
