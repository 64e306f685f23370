package slo

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/meridian-obs/meridian/internal/testutil/chtest"
)

// TestWarmPassGroupedAndIsolated: in steady state the recorder aggregates
// many SLOs per query (UNION ALL). Every SLO must still get exactly its own
// counts, and an SLO whose expression starts failing at run time (here a
// division by zero on rows after a point in time) must fail alone: the
// others keep recording and the failing one reports its error.
func TestWarmPassGroupedAndIsolated(t *testing.T) {
	conn, _ := chtest.DB(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 20, 12, 30, 10, 0, time.UTC)
	cut := now.Add(time.Minute).Truncate(time.Minute).Add(30 * time.Second)
	const n = warmQueryMax + 6 // two groups on probe_results
	yml := "slos:\n"
	for i := 0; i < n; i++ {
		// SLO i: answered within (i+1) ms.
		yml += fmt.Sprintf("  - {name: p%02d, objective: 0.9, window: 1d, sli: {probe: {latency_bound: %dms}}}\n", i, i+1)
	}
	yml += fmt.Sprintf("  - {name: breaks, objective: 0.9, window: 1d, sli: {expr: {table: probe_results, good: \"intDiv(1, toUInt32(time < toDateTime(%d))) = 1\", total: \"1\"}}}\n", cut.Unix())
	specs := mustParse(t, yml)
	// Rounds before the cut: one per 10 s over the last 2 h, RTTs 0.5..n ms.
	var ps []probe
	round := func(tm time.Time) probe {
		p := probe{t: tm, region: "eu", sent: uint32(n)}
		for i := 0; i < n; i++ {
			p.rtts = append(p.rtts, uint32(500+1000*i))
		}
		return p
	}
	for tm := now.Add(-2 * time.Hour); tm.Before(now); tm = tm.Add(10 * time.Second) {
		ps = append(ps, round(tm))
	}
	insertProbes(t, conn, ps)
	clock := &fakeClock{now}
	e, _ := newEngine(t, conn, clock, specs...)
	// Cycle until every SLO is back-filled and held in memory: the next
	// cycle takes the steady-state (grouped) path for all of them.
	warm := func() bool {
		for _, s := range specs {
			k := recKey{s.Name, s.Hash()}
			if e.mem[k] == nil || e.memDirty[k] {
				return false
			}
			if st, ok := e.Status(s.Name, "eu"); !ok || st.Backfilling {
				return false
			}
		}
		return true
	}
	for i := 0; !warm(); i++ {
		if i == 20 {
			t.Fatal("SLOs still not warm after 20 cycles")
		}
		if err := e.Cycle(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// New rows after the cut: "breaks" now throws, the others must count them.
	late := []probe{round(cut.Add(5 * time.Second)), round(cut.Add(15 * time.Second))}
	insertProbes(t, conn, late)
	ps = append(ps, late...)
	clock.t = cut.Add(20 * time.Second)
	_ = e.Cycle(ctx)
	end := floorMinute(clock.t).Add(time.Minute)
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("p%02d", i)
		st, ok := e.Status(name, "eu")
		if !ok {
			t.Fatalf("%s: no status", name)
		}
		var want Counts
		for _, p := range ps {
			if p.t.Before(end.Add(-time.Hour)) || !p.t.Before(end) {
				continue
			}
			want.Total += uint64(p.sent)
			for _, r := range p.rtts {
				if r <= uint32(1000*(i+1)) {
					want.Good++
				}
			}
		}
		if got := st.WindowCounts["1h"]; got != want {
			t.Errorf("%s 1h: got %+v, want %+v", name, got, want)
		}
		if err := e.recErr(name); err != nil {
			t.Errorf("%s: recording error %v", name, err)
		}
	}
	err := e.recErr("breaks")
	if err == nil {
		t.Fatal("the failing SLO reports no recording error")
	}
	if want := `SLO "breaks"`; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not name the SLO", err)
	}
}
