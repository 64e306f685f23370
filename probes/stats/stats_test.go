package stats

import (
	"math"
	"testing"
	"time"
)

func ms(v ...float64) []time.Duration {
	out := make([]time.Duration, len(v))
	for i, x := range v {
		out[i] = time.Duration(x * float64(time.Millisecond))
	}
	return out
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestComputeKnownSeries(t *testing.T) {
	// 10 sent, 8 answered: 10 20 30 40 50 60 70 80 ms.
	s := Compute(10, ms(10, 20, 30, 40, 50, 60, 70, 80), 1, 2)
	checks := []struct {
		name      string
		got, want float64
	}{
		{"loss", s.LossRatio, 0.2},
		{"min", s.MinMs, 10},
		{"max", s.MaxMs, 80},
		{"avg", s.AvgMs, 45},
		{"p50", s.P50Ms, 40}, // nearest rank: ceil(0.5*8)=4th
		{"p95", s.P95Ms, 80}, // ceil(7.6)=8th
		{"p99", s.P99Ms, 80},
		{"stddev", s.StddevMs, math.Sqrt(525)}, // population variance of 10..80 step 10
		{"jitter", s.JitterMs, 10},
	}
	for _, c := range checks {
		if !near(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	// RFC 3550 estimator with constant |D| = 10 over 7 pairs: J = 10·(1 − (15/16)^7).
	if want := 10 * (1 - math.Pow(15.0/16, 7)); !near(s.JitterRFC3550Ms, want) {
		t.Errorf("rfc3550 = %v, want %v", s.JitterRFC3550Ms, want)
	}
	if s.Sent != 10 || s.Received != 8 || s.Duplicates != 1 || s.Reordered != 2 {
		t.Errorf("counts %+v", s)
	}
	want := []uint32{10000, 20000, 30000, 40000, 50000, 60000, 70000, 80000}
	for i := range want {
		if s.RTTsUs[i] != want[i] {
			t.Fatalf("RTTsUs = %v, want %v", s.RTTsUs, want)
		}
	}
}

func TestJitterAlternating(t *testing.T) {
	// 1 3 1 3 1: |D| = 2 each; mean 2.
	mean, j := Jitter([]float64{1, 3, 1, 3, 1})
	if !near(mean, 2) {
		t.Errorf("mean jitter %v, want 2", mean)
	}
	if want := 2 * (1 - math.Pow(15.0/16, 4)); !near(j, want) {
		t.Errorf("rfc3550 %v, want %v", j, want)
	}
	if m, j := Jitter([]float64{5}); m != 0 || j != 0 {
		t.Errorf("single value jitter %v %v", m, j)
	}
}

func TestPercentileNearestRank(t *testing.T) {
	sorted := make([]float64, 100)
	for i := range sorted {
		sorted[i] = float64(i + 1)
	}
	for _, c := range []struct{ p, want float64 }{{50, 50}, {95, 95}, {99, 99}, {100, 100}, {0.1, 1}} {
		if got := Percentile(sorted, c.p); got != c.want {
			t.Errorf("p%v = %v, want %v", c.p, got, c.want)
		}
	}
	if Percentile(nil, 50) != 0 {
		t.Error("empty percentile not 0")
	}
}

func TestMOS(t *testing.T) {
	// Leff = 20+0+10 = 30 → R = 93.2 − 0.75 = 92.45.
	r := 92.45
	want := 1 + 0.035*r + 7e-6*r*(r-60)*(100-r)
	if got := MOS(20, 0, 0); !near(got, want) {
		t.Errorf("MOS(20,0,0) = %v, want %v", got, want)
	}
	// Leff = 200+2·20+10 = 250 → R = 93.2 − 13 − 2.5·2 = 75.2.
	r = 75.2
	want = 1 + 0.035*r + 7e-6*r*(r-60)*(100-r)
	if got := MOS(200, 20, 0.02); !near(got, want) {
		t.Errorf("MOS(200,20,0.02) = %v, want %v", got, want)
	}
	if got := MOS(10, 1, 1); got != 1 {
		t.Errorf("MOS at full loss = %v, want 1", got)
	}
	if got := MOS(5000, 0, 0.5); got != 1 {
		t.Errorf("MOS with R clamped to 0 = %v, want 1", got)
	}
	s := Compute(5, nil, 0, 0)
	if s.LossRatio != 1 || s.MOS != 1 || s.AvgMs != 0 || len(s.RTTsUs) != 0 {
		t.Errorf("all lost: %+v", s)
	}
}
