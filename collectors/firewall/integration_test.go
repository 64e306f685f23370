package firewall

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/meridian-obs/meridian/internal/testutil/pipetest"
)

// TestIntoClickHouse sends syslog over TCP through the real pipeline into
// ClickHouse and checks the firewall_events rows.
func TestIntoClickHouse(t *testing.T) {
	st, p, reg := pipetest.Start(t, 500)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cfg := DefaultConfig()
	cfg.Syslog.TCP = "127.0.0.1:0"
	cfg.Devices = []DeviceConfig{{Name: "pa-fw1", Region: "eu-west", Site: "dub1"}}
	c, err := New(cfg, Deps{Registry: reg, Sink: p.FirewallEvents()})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", c.TCPAddr())
	if err != nil {
		t.Fatal(err)
	}
	const n = 1000
	var b strings.Builder
	for i := 0; i < n; i++ {
		switch i % 4 {
		case 0:
			fmt.Fprintf(&b, `<14>Jan 15 10:00:01 pa-fw1 1,2024/01/15 10:00:01,0128,TRAFFIC,end,2560,2024/01/15 10:00:01,10.1.1.10,2001:db8::53,203.0.113.5,0.0.0.0,"r,{1}",,,dns,vsys1,trust,untrust,ethernet1/2,ethernet1/1,default,,%d,1,%d,53,40001,0,0x19,udp,allow,%d,90,130,2,2024/01/15 09:59:59,0,any`+"\n", i, 1024+i, i)
		case 1:
			fmt.Fprintf(&b, "<4>Jan 15 10:00:01 gw1 kernel: DROP-IN: IN=eth0 OUT= SRC=203.0.113.9 DST=198.51.100.2 LEN=%d PROTO=TCP SPT=%d DPT=22\n", i, 1024+i)
		case 2:
			fmt.Fprintf(&b, "<166>Jan 15 10:00:01 asa1 %%ASA-6-302016: Teardown UDP connection %d for outside:8.8.8.8/53 to inside:10.0.0.5/%d duration 0:02:01 bytes %d\n", i, 1024+i, i)
		case 3:
			fmt.Fprintf(&b, "<13>Jan 15 10:00:01 web1 app: unknown line %d\n", i)
		}
	}
	if _, err := conn.Write([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	// Stop the collector (it flushes into the pipeline) once the sender's
	// lines are in, then the pipeline (it flushes into ClickHouse).
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		var total float64
		for _, f := range []string{FormatPANOS, FormatIPTables, FormatASA, FormatUnknown} {
			total += testutil.ToFloat64(c.m.lines.WithLabelValues(f))
		}
		if total >= n {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	type agg struct {
		format        string
		n, bytes, sum uint64
	}
	rows, err := st.Conn().Query(ctx, "SELECT format, count(), sum(bytes), sum(src_port) FROM firewall_events GROUP BY format ORDER BY format")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]agg{}
	for rows.Next() {
		var a agg
		if err := rows.Scan(&a.format, &a.n, &a.bytes, &a.sum); err != nil {
			t.Fatal(err)
		}
		got[a.format] = a
	}
	rows.Close()
	for f, mod := range map[string]int{FormatPANOS: 0, FormatIPTables: 1, FormatASA: 2, FormatUnknown: 3} {
		var cnt, bytes, sport uint64
		for i := mod; i < n; i += 4 {
			cnt++
			if f != FormatUnknown {
				bytes += uint64(i)
				sport += uint64(1024 + i)
			}
		}
		if f == FormatASA {
			sport = 53 * cnt // teardown keeps message order: 8.8.8.8/53 first
		}
		if a := got[f]; a.n != cnt || a.bytes != bytes || a.sum != sport {
			t.Errorf("%s: count %d bytes %d sum(src_port) %d, want %d %d %d", f, a.n, a.bytes, a.sum, cnt, bytes, sport)
		}
	}
	var src, dst, natSrc, region, rule, raw string
	if err := st.Conn().QueryRow(ctx, "SELECT IPv6NumToString(src_addr), IPv6NumToString(dst_addr), IPv6NumToString(nat_src_addr), region, rule, raw FROM firewall_events WHERE format = 'panos' AND src_port = 1024").
		Scan(&src, &dst, &natSrc, &region, &rule, &raw); err != nil {
		t.Fatal(err)
	}
	if src != "::ffff:10.1.1.10" || dst != "2001:db8::53" || natSrc != "::ffff:203.0.113.5" || region != "eu-west" || rule != "r,{1}" || !strings.Contains(raw, "TRAFFIC") {
		t.Errorf("panos row: %s %s %s %s %q %q", src, dst, natSrc, region, rule, raw)
	}
}
