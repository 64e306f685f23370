package web

import (
	"math"
	"net/url"
	"testing"
	"time"

	"github.com/meridian-obs/meridian/pipeline/store"
)

func TestParseQuery(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		q        string
		ok       bool
		from, to time.Time
		step     time.Duration
	}{
		{"", true, now.Add(-6 * time.Hour), now, 5 * time.Minute},
		{"range=30d", true, now.Add(-30 * 24 * time.Hour), now, 6 * time.Hour},
		{"range=1h&step=1m", true, now.Add(-time.Hour), now, time.Minute},
		{"from=2026-04-30T00:00:00Z&to=1777550400", true, time.Date(2026, 4, 30, 0, 0, 0, 0, time.UTC), time.Unix(1777550400, 0).UTC(), 5 * time.Minute},
		{"range=0h", false, time.Time{}, time.Time{}, 0},
		{"range=-1d", false, time.Time{}, time.Time{}, 0},
		{"range=401d", false, time.Time{}, time.Time{}, 0},
		{"range=1h&from=1", false, time.Time{}, time.Time{}, 0},
		{"to=1", false, time.Time{}, time.Time{}, 0},
		{"range=30d&step=1m", false, time.Time{}, time.Time{}, 0},
		{"region=a&region=b", false, time.Time{}, time.Time{}, 0},
		{"region=%00", false, time.Time{}, time.Time{}, 0},
		{"nope=1", false, time.Time{}, time.Time{}, 0},
	}
	for _, c := range cases {
		t.Run(c.q, func(t *testing.T) {
			v, _ := url.ParseQuery(c.q)
			q, err := parseQuery(v, now, []string{"region"})
			if (err == nil) != c.ok {
				t.Fatalf("err = %v, want ok %v", err, c.ok)
			}
			if c.ok && (!q.From.Equal(c.from) || !q.To.Equal(c.to) || q.Step != c.step) {
				t.Fatalf("got %s..%s step %s, want %s..%s step %s", q.From, q.To, q.Step, c.from, c.to, c.step)
			}
		})
	}
}

func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{"range=6h", "from=1&to=2", "range=7d&step=1h&region=x", "step=0s", "range=99999999999d"} {
		f.Add(s)
	}
	now := time.Unix(1_780_000_000, 0)
	f.Fuzz(func(t *testing.T, s string) {
		v, err := url.ParseQuery(s)
		if err != nil {
			return
		}
		q, err := parseQuery(v, now, []string{"region", "target"}, "limit")
		if err != nil {
			return
		}
		if !q.From.Before(q.To) || q.Step < time.Minute || q.To.Sub(q.From) > maxRange || q.To.Sub(q.From)/q.Step > 2000 {
			t.Fatalf("%q accepted with from %s to %s step %s", s, q.From, q.To, q.Step)
		}
	})
}

func TestHistQuantiles(t *testing.T) {
	// 1,000 values spread uniformly from 10 to 100 ms, binned as the
	// rollups' materialized views bin them.
	h := make([]uint64, store.ProbeHistBins)
	for i := 0; i < 1000; i++ {
		v := 10 + 90*float64(i)/999
		b := int(math.Floor(math.Log(v/store.ProbeHistBase) / math.Log(store.ProbeHistRatio)))
		h[max(0, min(len(h)-1, b))]++
	}
	got := histQuantiles(h, []float64{0.05, 0.5, 0.95})
	for i, want := range []float64{14.5, 55, 95.5} {
		if math.Abs(got[i]-want)/want > 0.07 {
			t.Errorf("quantile %d: %.2f, want %.2f ±7 %%", i, got[i], want)
		}
	}
	if q := histQuantiles(make([]uint64, store.ProbeHistBins), []float64{0.5}); !math.IsNaN(q[0]) {
		t.Errorf("empty histogram: %v, want NaN", q)
	}
}
