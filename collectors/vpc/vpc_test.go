package vpc

import (
	"bytes"
	"compress/gzip"
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/meridian-obs/meridian/collectors/firewall"
	"github.com/meridian-obs/meridian/internal/config"
	"github.com/meridian-obs/meridian/pipeline/record"
)

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

var addrCmp = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })

const (
	v2Accept   = "2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK"
	v2Reject   = "2 123456789010 eni-1235b8ca123456789 172.31.9.69 172.31.9.12 49761 3389 6 20 4249 1418530010 1418530070 REJECT OK"
	v2NoData   = "2 123456789010 eni-1a2b3c4d - - - - - - - 1431280876 1431280934 - NODATA"
	v2SkipData = "2 123456789010 eni-4821ed2f - - - - - - - 1431280876 1431280934 - SKIPDATA"
	v2IPv6     = "2 123456789010 eni-1235b8ca123456789 2001:db8:1234:a100:8d6e:3477:df66:f105 2001:db8:1234:a102:3304:8879:34cf:4071 34892 22 6 54 8855 1477913708 1477913820 ACCEPT OK"
	v5Header   = "version vpc-id subnet-id instance-id interface-id account-id type srcaddr dstaddr srcport dstport pkt-srcaddr pkt-dstaddr protocol bytes packets start end action tcp-flags log-status region az-id flow-direction traffic-path"
	v5Egress   = "5 vpc-0a1b2c3d subnet-aaaa1111 i-01234567890123456 eni-0abcd1234 123456789010 IPv4 10.0.1.5 52.95.128.10 43418 443 10.0.1.5 52.95.128.10 6 5200 12 1700000000 1700000060 ACCEPT 19 OK eu-west-1 euw1-az2 egress 8"
	v5NAT      = "5 vpc-0a1b2c3d subnet-aaaa1111 - eni-0nat 123456789010 IPv4 10.0.0.220 203.0.113.5 443 41000 198.51.100.7 10.0.1.5 6 900 3 1700000000 1700000060 ACCEPT 3 OK eu-west-1 euw1-az1 ingress -"
)

func TestParseLine(t *testing.T) {
	v2, _ := NewFormat(DefaultFields)
	v5, err := NewFormat(strings.Fields(v5Header))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name           string
		f              Format
		line           string
		want           record.Flow
		status, reason string
	}{
		{"v2 accept", v2, v2Accept, record.Flow{FlowType: "vpc", SamplingRate: 1, InIfName: "eni-1235b8ca123456789",
			SrcAddr: ip("172.31.16.139"), DstAddr: ip("172.31.16.21"), SrcPort: 20641, DstPort: 22, Proto: 6, Packets: 20, Bytes: 4249,
			TimeStart: time.Unix(1418530010, 0).UTC(), TimeEnd: time.Unix(1418530070, 0).UTC(), Action: "allow", EType: 0x0800}, "ok", ""},
		{"v2 reject", v2, v2Reject, record.Flow{FlowType: "vpc", SamplingRate: 1, InIfName: "eni-1235b8ca123456789",
			SrcAddr: ip("172.31.9.69"), DstAddr: ip("172.31.9.12"), SrcPort: 49761, DstPort: 3389, Proto: 6, Packets: 20, Bytes: 4249,
			TimeStart: time.Unix(1418530010, 0).UTC(), TimeEnd: time.Unix(1418530070, 0).UTC(), Action: "deny", EType: 0x0800}, "ok", ""},
		{"v2 ipv6", v2, v2IPv6, record.Flow{FlowType: "vpc", SamplingRate: 1, InIfName: "eni-1235b8ca123456789",
			SrcAddr: ip("2001:db8:1234:a100:8d6e:3477:df66:f105"), DstAddr: ip("2001:db8:1234:a102:3304:8879:34cf:4071"), SrcPort: 34892, DstPort: 22, Proto: 6,
			Packets: 54, Bytes: 8855, TimeStart: time.Unix(1477913708, 0).UTC(), TimeEnd: time.Unix(1477913820, 0).UTC(), Action: "allow", EType: 0x86dd}, "ok", ""},
		{"v5 egress", v5, v5Egress, record.Flow{FlowType: "vpc", SamplingRate: 1, OutIfName: "eni-0abcd1234", ExporterRegion: "eu-west-1", ExporterSite: "euw1-az2",
			SrcAddr: ip("10.0.1.5"), DstAddr: ip("52.95.128.10"), SrcPort: 43418, DstPort: 443, Proto: 6, Packets: 12, Bytes: 5200, TCPFlags: 19,
			TimeStart: time.Unix(1700000000, 0).UTC(), TimeEnd: time.Unix(1700000060, 0).UTC(), Action: "allow", EType: 0x0800}, "ok", ""},
		{"v5 through nat: pkt addresses win", v5, v5NAT, record.Flow{FlowType: "vpc", SamplingRate: 1, InIfName: "eni-0nat", ExporterRegion: "eu-west-1", ExporterSite: "euw1-az1",
			SrcAddr: ip("198.51.100.7"), DstAddr: ip("10.0.1.5"), SrcPort: 443, DstPort: 41000, Proto: 6, Packets: 3, Bytes: 900, TCPFlags: 3,
			TimeStart: time.Unix(1700000000, 0).UTC(), TimeEnd: time.Unix(1700000060, 0).UTC(), Action: "allow", EType: 0x0800}, "ok", ""},
		{"nodata", v2, v2NoData, record.Flow{}, "nodata", ""},
		{"skipdata", v2, v2SkipData, record.Flow{}, "skipdata", ""},
		{"too few fields", v2, "2 123 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 1 1 2 ACCEPT", record.Flow{}, "ok", ReasonFieldCount},
		{"too many fields", v2, v2Accept + " extra", record.Flow{}, "ok", ReasonFieldCount},
		{"bad address", v2, strings.Replace(v2Accept, "172.31.16.139", "172.31.16.1399", 1), record.Flow{}, "ok", ReasonBadAddr},
		{"bad port", v2, strings.Replace(v2Accept, "20641", "70000", 1), record.Flow{}, "ok", ReasonBadNumber},
		{"bad action", v2, strings.Replace(v2Accept, "ACCEPT", "MAYBE", 1), record.Flow{}, "ok", ReasonBadAction},
		{"bad status", v2, strings.Replace(v2Accept, " OK", " WHAT", 1), record.Flow{}, "ok", ReasonBadStatus},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var fl record.Flow
			status, reason := tt.f.parseLine(tt.line, &fl)
			if reason != tt.reason || (reason == "" && status != tt.status) {
				t.Fatalf("status %q reason %q, want %q %q", status, reason, tt.status, tt.reason)
			}
			if reason != "" || status != StatusOK {
				return
			}
			if diff := cmp.Diff(tt.want, fl, addrCmp); diff != "" {
				t.Errorf("flow (-want +got):\n%s", diff)
			}
		})
	}
}

type flowCapture struct {
	mu   sync.Mutex
	rows []record.Flow
}

func (c *flowCapture) Write(_ context.Context, rows []record.Flow) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rows = append(c.rows, rows...)
	return nil
}

func (c *flowCapture) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.rows)
}

func gz(t testing.TB, s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := w.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// manyLines returns n accepted v2 records whose bytes are 1..n.
func manyLines(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		b.WriteString(strings.Replace(v2Accept, " 4249 ", " "+strconv.Itoa(i)+" ", 1))
		b.WriteByte('\n')
	}
	return b.String()
}

func TestIngestPath(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// a: plain v2 with header, a bad line between good ones, NODATA and SKIPDATA.
	write("a.log", []byte(strings.Join(DefaultFields, " ")+"\n"+v2Accept+"\nthis is not a record\n"+v2Reject+"\n"+v2NoData+"\n"+v2SkipData+"\n\n"+v2IPv6))
	// b: gzip, custom v5 format from its header.
	write("sub/b.log.gz", gz(t, v5Header+"\n"+v5Egress+"\n"+v5NAT+"\n"))
	// c: gzip cut in the middle: the complete lines before the cut are kept.
	full := gz(t, manyLines(20000))
	write("c.log.gz", full[:len(full)*2/3])
	// d: not gzip at all but named .gz: read as text, all lines bad.
	write("d.log.gz", []byte("garbage\n"))
	// e: gzip with a corrupt checksum.
	bad := gz(t, v2Accept+"\n")
	bad[len(bad)-6] ^= 0xff
	write("e.log.gz", bad)

	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	nets := &firewall.PrefixTable{}
	nets.Add(netip.MustParsePrefix("172.31.0.0/16"), firewall.Location{Region: "us-east-1", Site: "vpc-a"})
	sink := &flowCapture{}
	st, err := IngestPath(context.Background(), dir, sink, Options{Metrics: m, Region: "us-east-1", Networks: nets})
	if err != nil {
		t.Fatal(err)
	}
	if st.Files != 5 || st.NoData != 1 || st.SkipData != 1 {
		t.Errorf("files %d nodata %d skipdata %d", st.Files, st.NoData, st.SkipData)
	}
	if st.Bad[ReasonBadNumber] != 2 || st.Bad[ReasonCorrupt] != 2 {
		t.Errorf("bad %v", st.Bad)
	}
	// The cut file: every record before the cut, none after, none partial.
	var fromC int
	var sumC uint64
	for _, r := range sink.rows {
		if r.InIfName == "eni-1235b8ca123456789" && r.DstPort == 22 && r.SrcAddr == ip("172.31.16.139") {
			fromC++
			sumC += r.Bytes
		}
	}
	// Minus the v2Accept of a.log and of e.log.gz (its line decodes whole
	// before the checksum fails at the end; it is kept).
	fromC -= 2
	sumC -= 2 * 4249
	if fromC < 1000 || fromC >= 20000 || sumC != uint64(fromC*(fromC+1)/2) {
		t.Errorf("cut gzip: %d records with byte sum %d: want a prefix 1..k of the 20000", fromC, sumC)
	}
	if st.Records != 6+fromC || len(sink.rows) != st.Records {
		t.Errorf("records %d, sink %d, want %d", st.Records, len(sink.rows), 6+fromC)
	}
	r0 := sink.rows[0]
	if r0.Action != "allow" || r0.ExporterRegion != "us-east-1" || r0.SrcRegion != "us-east-1" || r0.SrcSite != "vpc-a" || !r0.TimeReceived.Equal(r0.TimeEnd) {
		t.Errorf("first row: %+v", r0)
	}
	var sawFile bool
	for _, e := range st.Errors {
		if strings.HasSuffix(e.File, "a.log") && e.Line == 3 && e.Reason == ReasonBadNumber {
			sawFile = true
		}
	}
	if !sawFile {
		t.Errorf("errors do not name a.log line 3: %+v", st.Errors)
	}
	if got := testutil.ToFloat64(m.badTotal.WithLabelValues(ReasonCorrupt)); got != 2 {
		t.Errorf("meridian_vpc_bad_total{corrupt_gzip} = %v", got)
	}
	if got := testutil.ToFloat64(m.recordsTotal.WithLabelValues(StatusNoData)); got != 1 {
		t.Errorf("meridian_vpc_records_total{nodata} = %v", got)
	}
	if _, err := IngestPath(context.Background(), filepath.Join(dir, "missing"), sink, Options{}); err == nil {
		t.Error("missing path: no error")
	}
}

func TestWatcherRemembers(t *testing.T) {
	dir, state := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "1.log"), []byte(manyLines(10)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "2.log.gz"), gz(t, manyLines(7)), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.WatchDir = dir
	cfg.Settle = 0
	cfg.PollInterval = 20 * time.Millisecond
	sink := &flowCapture{}
	newW := func() *Watcher {
		w, err := NewWatcher(cfg, Deps{Sink: sink, StateDir: state, Registry: prometheus.NewRegistry()})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		return w
	}
	waitFor := func(w *Watcher, rel string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !w.Ingested(rel) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if !w.Ingested(rel) {
			t.Fatalf("%s not ingested", rel)
		}
	}
	w := newW()
	waitFor(w, "2.log.gz")
	waitFor(w, "1.log")
	if err := w.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := sink.len(); n != 17 {
		t.Fatalf("first run: %d rows, want 17", n)
	}
	// Restart: the same files are not read again; a new one is.
	w = newW()
	// Written whole then renamed, as a sync tool does (settle is 0 here).
	if err := os.WriteFile(filepath.Join(dir, "3.log.tmp"), []byte(manyLines(5)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "3.log.tmp"), filepath.Join(dir, "3.log")); err != nil {
		t.Fatal(err)
	}
	waitFor(w, "3.log")
	if err := w.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := sink.len(); n != 22 {
		t.Fatalf("after restart: %d rows, want 22 (17 + 5, nothing twice)", n)
	}
	if err := w.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(state, cfg.StateFile))
	if err != nil || !strings.Contains(string(b), `"3.log"`) {
		t.Errorf("state file: %v %s", err, b)
	}
}

func TestConfigValidate(t *testing.T) {
	c := DefaultConfig()
	c.PollInterval = 0
	c.Fields = []string{"srcaddr", "bogus"}
	c.Networks = []firewall.NetworkConfig{{CIDR: "nope"}}
	r := config.NewReporter()
	r.Validate("vpc_logs", c)
	err := r.Err()
	for _, want := range []string{"vpc_logs.poll_interval:", "vpc_logs.fields:", "vpc_logs.networks[0].cidr:"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %s in %v", want, err)
		}
	}
	r = config.NewReporter()
	r.Validate("vpc_logs", DefaultConfig())
	if err := r.Err(); err != nil {
		t.Error(err)
	}
}
