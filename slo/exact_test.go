package slo

import (
	"context"
	"math"
	"math/rand"
	"testing"
	"time"

	"github.com/meridian-obs/meridian/internal/testutil/chtest"
)

// TestExactness inserts random probe rounds over 32 days (and late rows
// after a first cycle) and checks every count, SLI, burn rate and budget
// the engine reports against a computation over the same rows in Go.
func TestExactness(t *testing.T) {
	conn, _ := chtest.DB(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 20, 12, 34, 56, 0, time.UTC)
	rng := rand.New(rand.NewSource(1))
	const bound = 50000 // µs
	regions := []string{"eu-west", "us-east", "ap-south"}
	var ps []probe
	gen := func(tm time.Time) probe {
		p := probe{t: tm.Truncate(time.Second), region: regions[rng.Intn(len(regions))], sent: uint32(1 + rng.Intn(10))}
		if rng.Intn(20) == 0 {
			p.check = "other" // filtered out by the SLO
		}
		for i := 0; i < int(p.sent); i++ {
			switch rng.Intn(10) {
			case 0: // lost
			case 1:
				p.rtts = append(p.rtts, uint32(bound+1+rng.Intn(100000)))
			default:
				p.rtts = append(p.rtts, uint32(rng.Intn(bound+1)))
			}
		}
		return p
	}
	for i := 0; i < 20000; i++ { // spread over 32 days
		ps = append(ps, gen(now.Add(-time.Duration(rng.Int63n(int64(32*24*time.Hour))))))
	}
	for i := 0; i < 5000; i++ { // dense over the last 7 hours
		ps = append(ps, gen(now.Add(-time.Duration(rng.Int63n(int64(7*time.Hour))))))
	}
	insertProbes(t, conn, ps)
	specs := mustParse(t, `
slos:
  - name: edge-latency
    objective: 0.95
    window: 30d
    sli:
      probe:
        checks: [edge]
        latency_bound: 50ms
`)
	clock := &fakeClock{now}
	e, _ := newEngine(t, conn, clock, specs...)
	if err := e.Cycle(ctx); err != nil {
		t.Fatal(err)
	}
	// Late rows: within late_window, in minutes already recorded.
	var late []probe
	for i := 0; i < 300; i++ {
		late = append(late, gen(now.Add(-time.Duration(rng.Int63n(int64(10*time.Minute))))))
	}
	insertProbes(t, conn, late)
	ps = append(ps, late...)
	clock.t = now.Add(20 * time.Second) // same minute: same windows
	if err := e.Cycle(ctx); err != nil {
		t.Fatal(err)
	}
	end := floorMinute(clock.t).Add(time.Minute)
	_, starts := windowsOf(specs[0], end)
	for _, region := range regions {
		st, ok := e.Status("edge-latency", region)
		if !ok {
			t.Fatalf("no status for %s", region)
		}
		if st.Backfilling {
			t.Errorf("%s: still back-filling (covered from %s)", region, st.CoveredFrom)
		}
		for name, start := range starts {
			var want Counts
			for _, p := range ps {
				if p.region != region || p.check == "other" || p.t.Before(start) || !p.t.Before(end) {
					continue
				}
				want.Total += uint64(p.sent)
				for _, r := range p.rtts {
					if r <= bound {
						want.Good++
					}
				}
			}
			if got := st.WindowCounts[name]; got != want {
				t.Errorf("%s window %s: got %+v, want %+v", region, name, got, want)
			}
			wantBurn := (1 - float64(want.Good)/float64(want.Total)) / (1 - 0.95)
			if b := st.BurnRates[name]; b == nil || math.Abs(*b-wantBurn) > 1e-9 {
				t.Errorf("%s burn %s: got %v, want %v", region, name, b, wantBurn)
			}
			if name == WindowName {
				sli := float64(want.Good) / float64(want.Total)
				if st.SLI == nil || math.Abs(*st.SLI-sli) > 1e-12 {
					t.Errorf("%s SLI: got %v, want %v", region, st.SLI, sli)
				}
				if st.ErrorBudgetRemaining == nil || math.Abs(*st.ErrorBudgetRemaining-(1-wantBurn)) > 1e-9 {
					t.Errorf("%s budget: got %v, want %v", region, st.ErrorBudgetRemaining, 1-wantBurn)
				}
			}
		}
	}
	if _, ok := e.Status("edge-latency", "nowhere"); ok {
		t.Error("status for a group without data")
	}
}
