package slo

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/meridian-obs/meridian/internal/testutil/chtest"
)

// The SRE Workbook cases (chapter 5), in accelerated time: one probe packet
// per second per region; the clock advances in steps and each step inserts
// the packets sent since the last one, then runs one engine cycle.

const workbookSLO = `
slos:
  - name: edge
    objective: 0.999
    window: 30d
    sli:
      probe: {}
`

type sim struct {
	t     *testing.T
	conn  driver.Conn
	clock *fakeClock
	e     *Engine
	sent  time.Time // packets sent up to (excluded)
	badEU func(time.Time) bool
}

func newSim(t *testing.T, start time.Time, history time.Duration, bad func(time.Time) bool) *sim {
	conn, _ := chtest.DB(t)
	s := &sim{t: t, conn: conn, clock: &fakeClock{start.Add(-history)}, sent: start.Add(-history), badEU: bad}
	s.e, _ = newEngine(t, conn, s.clock, mustParse(t, workbookSLO)...)
	s.advance(history) // back-dated history
	return s
}

// advance moves the clock by d, inserting the packets of (sent, now].
func (s *sim) advance(d time.Duration) {
	s.t.Helper()
	s.clock.t = s.clock.t.Add(d)
	var ps []probe
	for ; !s.sent.After(s.clock.t); s.sent = s.sent.Add(time.Second) {
		eu := probe{t: s.sent, region: "eu", sent: 1, rtts: []uint32{900}}
		if s.badEU(s.sent) {
			eu.rtts = nil
		}
		ps = append(ps, eu, probe{t: s.sent, region: "us", sent: 1, rtts: []uint32{800}})
	}
	insertProbes(s.t, s.conn, ps)
	if err := s.e.Cycle(context.Background()); err != nil {
		s.t.Fatalf("cycle at %s: %v", s.clock.t, err)
	}
}

func (s *sim) firing(region, cond string) bool {
	st, ok := s.e.Status("edge", region)
	if !ok {
		s.t.Fatalf("no status for %s", region)
	}
	for _, c := range st.Conditions {
		if c.Name == cond {
			return c.Firing
		}
	}
	s.t.Fatalf("no condition %s", cond)
	return false
}

func anyPage(st Status) bool {
	for _, c := range st.Conditions {
		if c.Severity == "page" && c.Firing {
			return true
		}
	}
	return false
}

func TestWorkbookFullOutagePagesThenClears(t *testing.T) {
	t0 := time.Date(2026, 11, 20, 10, 0, 7, 0, time.UTC) // outage start
	outage := 3 * time.Minute
	s := newSim(t, t0, 2*time.Hour, func(tm time.Time) bool { return !tm.Before(t0) && tm.Before(t0.Add(outage)) })
	if s.firing("eu", "page-1h-5m") {
		t.Fatal("page before the outage")
	}
	// Formula: a full outage burns at 1/(1−0.999) = 1000; the 1h window
	// reaches 14.4 after 14.4/1000 × 1h = 51.84 s.
	want := time.Duration(14.4 / 1000 * float64(time.Hour))
	const step = 2 * time.Second
	var detected time.Duration
	for s.clock.t.Before(t0.Add(outage)) {
		s.advance(step)
		if s.firing("eu", "page-1h-5m") {
			detected = s.clock.t.Sub(t0)
			break
		}
	}
	if detected == 0 {
		t.Fatal("full outage did not page")
	}
	// Minute buckets: the 1h window holds 59–60 minutes of packets, so the
	// threshold is met up to 1 s earlier; the step adds up to 2 s.
	if math.Abs((detected - want).Seconds()) > 3 {
		t.Errorf("detection delay %s, formula %s", detected, want)
	}
	t.Logf("detection delay %s (formula %s)", detected, want)
	if anyPage(mustStatus(t, s.e, "us")) {
		t.Error("the healthy region pages")
	}
	// The outage ends; the 1h/5m page must clear within its short window
	// (5m, plus one minute bucket and a step), the 6h/30m one within 30m.
	for s.clock.t.Before(t0.Add(outage)) {
		s.advance(15 * time.Second)
	}
	if !s.firing("eu", "page-6h-30m") {
		t.Error("a 3-minute full outage should also fire the 6h/30m page")
	}
	stop := t0.Add(outage)
	var cleared1h, cleared6h time.Duration
	for s.clock.t.Before(stop.Add(40 * time.Minute)) {
		s.advance(30 * time.Second)
		if cleared1h == 0 && !s.firing("eu", "page-1h-5m") {
			cleared1h = s.clock.t.Sub(stop)
		}
		if cleared6h == 0 && !s.firing("eu", "page-6h-30m") {
			cleared6h = s.clock.t.Sub(stop)
			break
		}
	}
	t.Logf("1h/5m page cleared %s after the errors stopped, 6h/30m page %s", cleared1h, cleared6h)
	if cleared1h == 0 || cleared1h > 5*time.Minute+time.Minute+30*time.Second {
		t.Errorf("1h/5m page cleared after %s, want within 5m (+1m bucket +30s step)", cleared1h)
	}
	if cleared1h < 4*time.Minute {
		t.Errorf("1h/5m page cleared after %s: before the 5m window could be free of errors", cleared1h)
	}
	if cleared6h == 0 || cleared6h > 31*time.Minute+30*time.Second {
		t.Errorf("6h/30m page cleared after %s, want within 30m (+1m +30s)", cleared6h)
	}
}

func mustStatus(t *testing.T, e *Engine, group string) Status {
	t.Helper()
	st, ok := e.Status("edge", group)
	if !ok {
		t.Fatalf("no status for %s", group)
	}
	return st
}

func TestWorkbookBlipDoesNotPage(t *testing.T) {
	t0 := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	s := newSim(t, t0, 2*time.Hour, func(tm time.Time) bool { return !tm.Before(t0) && tm.Before(t0.Add(20*time.Second)) })
	maxBurn := 0.0
	for s.clock.t.Before(t0.Add(10 * time.Minute)) {
		s.advance(10 * time.Second)
		st := mustStatus(t, s.e, "eu")
		if anyPage(st) {
			t.Fatalf("a 20 s blip paged at %s: %+v", s.clock.t.Sub(t0), st.Conditions)
		}
		if b := st.BurnRates["5m"]; b != nil && *b > maxBurn {
			maxBurn = *b
		}
	}
	// The blip is seen (short window far above 14.4) but the long window
	// stays below: 20/3600 × 1000 ≈ 5.6.
	if maxBurn < 14.4 {
		t.Errorf("the blip was not seen in the 5m window (max burn %v)", maxBurn)
	}
	if b := *mustStatus(t, s.e, "eu").BurnRates["1h"]; b < 5 || b > 6 {
		t.Errorf("1h burn after the blip %v, want ≈ 5.6", b)
	}
}

// A slow burn at 1.5× for 3 days raises the 3d/6h ticket and nothing else.
func TestWorkbookSlowBurnTicketsNoPage(t *testing.T) {
	conn, _ := chtest.DB(t)
	now := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	start := now.Add(-80 * time.Hour)
	// One round per minute and region of 2000 packets; in eu 3 are lost
	// (0.15% = 1.5 × the 0.1% budget).
	for _, r := range []struct {
		region string
		lost   int
	}{{"eu", 3}, {"us", 0}} {
		q := fmt.Sprintf(`INSERT INTO probe_results (time, target_region, check_name, sent, received, rtts_us)
SELECT toDateTime(%d + number * 60), '%s', 'edge', 2000, %d, arrayMap(i -> toUInt32(1000 + i), range(%d))
FROM system.numbers LIMIT %d`, start.Unix(), r.region, 2000-r.lost, 2000-r.lost, int(now.Sub(start)/time.Minute))
		if err := conn.Exec(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
	clock := &fakeClock{now}
	e, _ := newEngine(t, conn, clock, mustParse(t, workbookSLO)...)
	if err := e.Cycle(context.Background()); err != nil {
		t.Fatal(err)
	}
	st, ok := e.Status("edge", "eu")
	if !ok {
		t.Fatal("no status")
	}
	got := map[string]bool{}
	for _, c := range st.Conditions {
		got[c.Name] = c.Firing
	}
	want := map[string]bool{"page-1h-5m": false, "page-6h-30m": false, "ticket-1d-2h": false, "ticket-3d-6h": true}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s firing=%v, want %v (burn rates: 3d %v, 1d %v)", k, got[k], v, *st.BurnRates["3d"], *st.BurnRates["1d"])
		}
	}
	if b := *st.BurnRates["3d"]; math.Abs(b-1.5) > 1e-9 {
		t.Errorf("3d burn %v, want 1.5", b)
	}
	if us, _ := e.Status("edge", "us"); anyPage(us) || us.Conditions[3].Firing {
		t.Error("healthy region alerts")
	}
}
