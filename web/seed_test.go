package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/meridian-obs/meridian/internal/testutil/chtest"
	"github.com/meridian-obs/meridian/pipeline"
	"github.com/meridian-obs/meridian/pipeline/record"
)

func TestMain(m *testing.M) { chtest.Main(m) }

// insert writes rows through the pipeline's table definition (the same
// columns and conversions as production inserts).
func insert[T any](t testing.TB, conn driver.Conn, tbl *pipeline.Table[T], rows []T) {
	t.Helper()
	ctx := context.Background()
	b, err := conn.PrepareBatch(ctx, "INSERT INTO "+tbl.Name+" ("+strings.Join(tbl.Columns, ", ")+")")
	if err != nil {
		t.Fatalf("prepare %s: %v", tbl.Name, err)
	}
	for i := range rows {
		if err := tbl.Append(b, &rows[i], 1); err != nil {
			t.Fatalf("append %s: %v", tbl.Name, err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatalf("insert %s: %v", tbl.Name, err)
	}
}

var (
	seedRegions = []string{"eu-west", "us-east", "ap-south"}
	seedTargets = map[string]string{ // target → region
		"web.eu-west.example:443":  "eu-west",
		"web.us-east.example:443":  "us-east",
		"dns.ap-south.example:53":  "ap-south",
		"edge.ap-south.example:80": "ap-south",
	}
)

// baseRTT gives each path a distinct, known latency.
func baseRTT(src, dstRegion string) float64 {
	if src == dstRegion {
		return 2
	}
	return 40 + 30*float64(len(src)+len(dstRegion)-12)
}

// seed writes 6 hours of probe rounds (every 5 minutes from every source
// region to every target), flows and firewall denies ending at now.
func seed(t testing.TB, conn driver.Conn, now time.Time) {
	t.Helper()
	now = now.Truncate(time.Minute)
	var probes []record.ProbeResult
	for i := 0; i < 72; i++ {
		ts := now.Add(-time.Duration(i) * 5 * time.Minute)
		for _, src := range seedRegions {
			for target, treg := range seedTargets {
				rtt := baseRTT(src, treg) + float64(i%7)
				recv := uint32(10)
				if src == "us-east" && treg == "ap-south" && i < 12 {
					recv = 7 // 30 % loss in the last hour on one path
				}
				probes = append(probes, record.ProbeResult{Time: ts, Agent: "agent-" + src, SrcRegion: src, SrcSite: src + "-a",
					Check: "ping", ProbeType: "icmp", Target: target, TargetAddr: netip.MustParseAddr("192.0.2.10"),
					TargetRegion: treg, TargetSite: treg + "-a", Sent: 10, Received: recv,
					RTTMinMs: rtt - 1, RTTAvgMs: rtt, RTTMaxMs: rtt + 5, RTTP50Ms: rtt, RTTP95Ms: rtt + 3, JitterMs: 0.5 + float64(i%3)})
			}
		}
	}
	// Two inserts: the rollups get two parts each, which queries add up
	// before merges (and which TestDataEndpoints merges).
	insert(t, conn, pipeline.ProbeResultsTable, probes[:len(probes)/2])
	insert(t, conn, pipeline.ProbeResultsTable, probes[len(probes)/2:])

	var flows []record.Flow
	for i := 0; i < 60; i++ {
		ts := now.Add(-time.Duration(i) * 5 * time.Minute)
		for j, src := range seedRegions {
			dst := seedRegions[(j+1)%3]
			flows = append(flows, record.Flow{TimeReceived: ts, FlowType: "netflow9", ExporterRegion: src, ExporterSite: src + "-a",
				SamplingRate: 1, SrcAddr: netip.MustParseAddr(fmt.Sprintf("10.%d.0.%d", j, 1+i%4)), DstAddr: netip.MustParseAddr("10.9.9.9"),
				SrcPort: 40000, DstPort: []uint16{443, 53, 22}[j], Proto: []uint8{6, 17, 6}[j], SrcRegion: src, DstRegion: dst,
				SrcSite: src + "-a", DstSite: dst + "-a", Bytes: uint64(1_000_000 * (j + 1)), Packets: uint64(1000 * (j + 1))})
		}
	}
	insert(t, conn, pipeline.FlowsTable, flows)

	var fw []record.FirewallEvent
	for i := 0; i < 120; i++ {
		ts := now.Add(-time.Duration(i) * 3 * time.Minute)
		dev := []string{"fw-eu-1", "fw-us-1"}[i%2]
		fw = append(fw, record.FirewallEvent{Time: ts, ReceivedAt: ts, Device: dev, Vendor: "iptables", Format: "netfilter",
			Action: record.ActionDeny, SrcAddr: netip.MustParseAddr(fmt.Sprintf("203.0.113.%d", 1+i%5)),
			DstAddr: netip.MustParseAddr("10.0.0.5"), DstPort: 22, Proto: 6, Rule: []string{"drop-ssh", "drop-bogons", "drop-ssh"}[i%3],
			Region: []string{"eu-west", "us-east"}[i%2], Site: "dc1"})
	}
	fw = append(fw, record.FirewallEvent{Time: now, ReceivedAt: now, Device: "fw-eu-1", Action: record.ActionAllow,
		SrcAddr: netip.MustParseAddr("198.51.100.1"), Rule: "allow-web"})
	insert(t, conn, pipeline.FirewallEventsTable, fw)
}

// testServer is a started web server on loopback with a user store and a
// migrated ClickHouse database.
type testServer struct {
	*Server
	conn   driver.Conn
	dir    string
	out    *bytes.Buffer
	admin  string
	adminP string
}

func startServer(t testing.TB, conn driver.Conn, dir string, mount func(*Server)) *testServer {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.MaxBodyBytes = 64 << 10
	out := &bytes.Buffer{}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	s, err := New(cfg, Deps{Log: log, Conn: func() driver.Conn { return conn }, StateDir: dir, Stdout: out})
	if err != nil {
		t.Fatal(err)
	}
	if mount != nil {
		mount(s)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Stop(ctx)
	})
	ts := &testServer{Server: s, conn: conn, dir: dir, out: out}
	for _, line := range strings.Split(out.String(), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "username: "); ok {
			ts.admin = v
		}
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "password: "); ok {
			ts.adminP = v
		}
	}
	return ts
}

// client is an HTTP client with a cookie jar, logged in as user.
type client struct {
	t    testing.TB
	base string
	hc   *http.Client
	csrf string
}

func newClient(t testing.TB, base string) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: t, base: base, hc: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
}

func (c *client) login(user, pw string) int {
	c.t.Helper()
	resp, body := c.do("POST", "/api/v1/session", map[string]string{"username": user, "password": pw}, nil)
	if resp.StatusCode == http.StatusOK {
		var me meResponse
		if err := json.Unmarshal(body, &me); err != nil {
			c.t.Fatal(err)
		}
		c.csrf = me.CSRFToken
	}
	return resp.StatusCode
}

func (c *client) do(method, path string, body any, hdr map[string]string) (*http.Response, []byte) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		switch b := body.(type) {
		case []byte:
			rd = bytes.NewReader(b)
		default:
			j, _ := json.Marshal(b)
			rd = bytes.NewReader(j)
		}
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func (c *client) getJSON(path string, v any) int {
	c.t.Helper()
	resp, b := c.do("GET", path, nil, nil)
	if v != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, v); err != nil {
			c.t.Fatalf("%s: %v: %s", path, err, b)
		}
	}
	return resp.StatusCode
}
