package slo

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meridian-obs/meridian/internal/testutil/chtest"
)

// The timeslice, ratio and expression SLIs run on a real ClickHouse and
// count what an independent computation over the same rows counts.
func TestTimesliceRatioAndExprSources(t *testing.T) {
	conn, _ := chtest.DB(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 20, 12, 30, 10, 0, time.UTC)
	base := now.Add(-10 * time.Minute).Truncate(time.Minute)
	// Probes: 10 minutes, 2 rounds of 10 packets a minute in eu.
	// Minute i: loss i% -> rounds lose i/2 packets each... kept simple:
	// even minutes are perfect; minute 3 loses 3 of 20 (15% > 10%);
	// minute 5 is slow (p95 350 ms > 200 ms); minute 7 has jitter 50 ms.
	var ps []probe
	wantGood := 0
	for i := 0; i < 10; i++ {
		m := base.Add(time.Duration(i) * time.Minute)
		for r := 0; r < 2; r++ {
			p := probe{t: m.Add(time.Duration(r*20) * time.Second), region: "eu", sent: 10, jitter: 5, mos: 4.3}
			for k := 0; k < 10; k++ {
				rtt := uint32(20000 + k*1000)
				if i == 5 {
					rtt = 350000
				}
				if i == 3 && r == 0 && k < 3 {
					continue // lost
				}
				p.rtts = append(p.rtts, rtt)
			}
			if i == 7 {
				p.jitter = 50
			}
			ps = append(ps, p)
		}
		if i != 3 && i != 5 && i != 7 {
			wantGood++
		}
	}
	insertProbes(t, conn, ps)
	for _, q := range []string{
		`INSERT INTO firewall_events (time, device, action, region, bytes) SELECT toDateTime(` + itoa(base.Unix()) + ` + number * 7), 'fw1', if(number % 4 = 0, 'deny', 'allow'), if(number % 2 = 0, 'eu', 'us'), number FROM system.numbers LIMIT 80`,
		`INSERT INTO flows (time_received, exporter_region, proto, tcp_flags, bytes, sampling_rate) SELECT toDateTime(` + itoa(base.Unix()) + ` + number * 5), 'eu', if(number % 3 = 0, 17, 6), if(number % 5 = 0, 4, 2), 100, 10 FROM system.numbers LIMIT 100`,
	} {
		if err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	specs := mustParse(t, `
slos:
  - name: quality
    objective: 0.9
    window: 1d
    budgeting: timeslices
    sli:
      probe: {max_loss: 0.1, max_p95_rtt: 200ms, max_jitter: 30ms, min_mos: 4}
  - name: fw-allow-bytes
    objective: 0.5
    window: 1d
    sli:
      ratio: {table: firewall_events, good: "action = 'allow'", measure: bytes}
  - name: tcp-no-rst
    objective: 0.5
    window: 1d
    sli:
      expr: {table: flows, good: "tcp_flags != 4", total: "proto = 6"}
  - name: empty
    objective: 0.99
    window: 1d
    sli:
      probe: {checks: [nothing-matches]}
  - name: fw-slices
    objective: 0.5
    window: 1d
    budgeting: timeslices
    timeslice_target: 0.8
    sli:
      ratio: {table: firewall_events, good: "action = 'allow'"}
`)
	e, _ := newEngine(t, conn, &fakeClock{now}, specs...)
	if err := e.Cycle(ctx); err != nil {
		t.Fatal(err)
	}
	check := func(slo, group string, good, total uint64) {
		t.Helper()
		st, ok := e.Status(slo, group)
		if !ok {
			t.Fatalf("no status %s/%s", slo, group)
		}
		if st.Good != good || st.Total != total || st.Stale {
			t.Errorf("%s/%s: good/total %d/%d (stale %v %s), want %d/%d", slo, group, st.Good, st.Total, st.Stale, st.Error, good, total)
		}
	}
	check("quality", "eu", uint64(wantGood), 10)
	// firewall: rows n = 0..79 at base + 7n s; region eu for even n; allow
	// unless n % 4 == 0; bytes = n.
	var g, tot uint64
	slices := map[int64][2]int{}
	for n := uint64(0); n < 80; n++ {
		if n%2 != 0 {
			continue
		}
		tot += n
		m := base.Add(time.Duration(7*n) * time.Second).Truncate(time.Minute).Unix()
		c := slices[m]
		c[1]++
		if n%4 != 0 {
			g += n
			c[0]++
		}
		slices[m] = c
	}
	check("fw-allow-bytes", "eu", g, tot)
	var goodSlices uint64
	for _, c := range slices {
		if float64(c[0]) >= 0.8*float64(c[1]) {
			goodSlices++
		}
	}
	check("fw-slices", "eu", goodSlices, uint64(len(slices)))
	// flows: proto 6 unless n % 3 == 0; RST (flags 4) when n % 5 == 0.
	g, tot = 0, 0
	for n := 0; n < 100; n++ {
		if n%3 == 0 {
			continue
		}
		tot++
		if n%5 != 0 {
			g++
		}
	}
	check("tcp-no-rst", "eu", g, tot)
	// No data: listed, flagged, figures absent (null), never NaN or 100%.
	st, ok := e.Status("empty", "")
	if !ok || st.HasData || st.SLI != nil || st.ErrorBudgetRemaining != nil || st.BurnRates["window"] != nil || st.Forecast.TimeToExhaustionSeconds != nil {
		t.Errorf("no-data status: %+v", st)
	}
	b, err := json.Marshal(st)
	if err != nil || !strings.Contains(string(b), `"sli":null`) || strings.Contains(string(b), "NaN") {
		t.Errorf("no-data JSON: %s %v", b, err)
	}
	for _, c := range st.Conditions {
		if c.State != CondNoData || c.Firing {
			t.Errorf("no-data condition %+v", c)
		}
	}
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

// Reload: a file that becomes invalid keeps its previous SLOs; another
// file's change applies.
func TestReloadKeepsPreviousOnInvalidFile(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.yaml")
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(a, "slos: [{name: a1, objective: 0.99, window: 7d, sli: {probe: {}}}]")
	write(b, "slos: [{name: b1, objective: 0.99, window: 7d, sli: {probe: {}}}]")
	cfg := DefaultConfig()
	cfg.Files = []string{a, b}
	e, err := New(cfg, Deps{Store: connOf{nil}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Reload(); err != nil {
		t.Fatal(err)
	}
	write(a, "slos: [{name: a1, objective: 2, window: 7d, sli: {probe: {}}}]")
	write(b, "slos: [{name: b2, objective: 0.99, window: 7d, sli: {probe: {}}}]")
	err = e.Reload()
	if err == nil {
		t.Fatal("invalid file accepted")
	}
	var names []string
	for _, s := range e.Specs() {
		names = append(names, s.Name+":"+formatFloat(s.Objective))
	}
	if len(names) != 2 || names[0] != "a1:0.99" || names[1] != "b2:0.99" {
		t.Errorf("specs after reload: %v", names)
	}
	if e.LoadError() == nil {
		t.Error("LoadError is nil")
	}
	// No ClickHouse: the cycle fails, is counted, nothing crashes.
	if err := e.Cycle(context.Background()); err == nil {
		t.Error("cycle without ClickHouse succeeded")
	}
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
