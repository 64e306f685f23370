package slo

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The API reports exactly the figures of an independent computation; a
// ClickHouse failure keeps the last statuses, marks them stale, counts the
// error and never changes an alert state.
func TestAPIAndStaleOnClickHouseError(t *testing.T) {
	t0 := time.Date(2026, 11, 20, 10, 0, 30, 0, time.UTC)
	// eu: packets lost from t0 on (full outage).
	s := newSim(t, t0, 90*time.Minute, func(tm time.Time) bool { return !tm.Before(t0) })
	for i := 0; i < 8; i++ {
		s.advance(15 * time.Second)
	}
	if !s.firing("eu", "page-1h-5m") {
		t.Fatal("outage did not page")
	}
	mux := http.NewServeMux()
	mux.Handle("GET /api/v1/slos", s.e.ListHandler())
	mux.Handle("GET /api/v1/slos/{name}", s.e.GetHandler())
	srv := httptest.NewServer(mux)
	defer srv.Close()
	var list struct {
		SLOs []struct {
			SLO                  string              `json:"slo"`
			Group                string              `json:"group"`
			SLI                  *float64            `json:"sli"`
			Objective            float64             `json:"objective"`
			ErrorBudgetRemaining *float64            `json:"error_budget_remaining"`
			BurnRates            map[string]*float64 `json:"burn_rates"`
			Alerts               []Condition         `json:"alerts"`
			Forecast             Forecast            `json:"forecast"`
		} `json:"slos"`
	}
	getJSON(t, srv.URL+"/api/v1/slos", &list)
	if len(list.SLOs) != 2 {
		t.Fatalf("got %d statuses", len(list.SLOs))
	}
	// Independent computation: packets per second, 1 per region; eu lost
	// everything since t0. Windows end at the next minute boundary.
	now := s.clock.t
	end := floorMinute(now).Add(time.Minute)
	count := func(region string, start time.Time) (good, total float64) {
		from := t0.Add(-90 * time.Minute)
		for ts := from; !ts.After(now); ts = ts.Add(time.Second) {
			if ts.Before(start) || !ts.Before(end) {
				continue
			}
			total++
			if region == "us" || ts.Before(t0) {
				good++
			}
		}
		return
	}
	for _, st := range list.SLOs {
		for _, w := range []struct {
			name string
			d    time.Duration
		}{{"5m", 5 * time.Minute}, {"30m", 30 * time.Minute}, {"1h", time.Hour}, {"6h", 6 * time.Hour}, {"window", 30 * 24 * time.Hour}} {
			g, tot := count(st.Group, end.Add(-w.d))
			want := (1 - g/tot) / (1 - 0.999)
			got := st.BurnRates[w.name]
			if got == nil || math.Abs(*got-want) > 1e-9 {
				t.Errorf("%s burn %s: API %v, computed %v", st.Group, w.name, got, want)
			}
			if w.name == "window" {
				if st.SLI == nil || math.Abs(*st.SLI-g/tot) > 1e-12 {
					t.Errorf("%s sli: API %v, computed %v", st.Group, st.SLI, g/tot)
				}
				if st.ErrorBudgetRemaining == nil || math.Abs(*st.ErrorBudgetRemaining-(1-want)) > 1e-9 {
					t.Errorf("%s budget: API %v, computed %v", st.Group, st.ErrorBudgetRemaining, 1-want)
				}
			}
		}
		if st.Group == "eu" && (st.Forecast.TimeToExhaustionSeconds == nil || *st.Forecast.TimeToExhaustionSeconds != 0) {
			t.Errorf("eu budget is overspent: forecast %+v", st.Forecast)
		}
		if st.Group == "us" && st.Forecast.TimeToExhaustionSeconds != nil {
			t.Errorf("us burns nothing: forecast %v", *st.Forecast.TimeToExhaustionSeconds)
		}
	}
	// The same figures as Prometheus metrics.
	eu, _ := s.e.Status("edge", "eu")
	for _, w := range []string{"5m", "1h", "window"} {
		if v := testutil.ToFloat64(s.e.metrics.burn.WithLabelValues("edge", "eu", w)); v != *eu.BurnRates[w] {
			t.Errorf("metric burn %s = %v, status %v", w, v, *eu.BurnRates[w])
		}
	}
	if v := testutil.ToFloat64(s.e.metrics.sli.WithLabelValues("edge", "eu")); v != *eu.SLI {
		t.Errorf("metric sli %v, status %v", v, *eu.SLI)
	}
	if v := testutil.ToFloat64(s.e.metrics.firing.WithLabelValues("edge", "eu", "page", "page-1h-5m")); v != 1 {
		t.Errorf("metric alert_firing %v", v)
	}
	var detail SLODetail
	getJSON(t, srv.URL+"/api/v1/slos/edge?history=1d", &detail)
	if detail.SLO == nil || detail.SLO.Name != "edge" || len(detail.Groups) != 2 || len(detail.History["eu"]) == 0 {
		t.Fatalf("detail: slo=%v groups=%d history=%d err=%q", detail.SLO, len(detail.Groups), len(detail.History["eu"]), detail.HistoryError)
	}
	if r, _ := http.Get(srv.URL + "/api/v1/slos/nope"); r.StatusCode != 404 {
		t.Errorf("unknown SLO: %d", r.StatusCode)
	}

	// ClickHouse fails (the table is gone) while the errors stop: the page
	// must neither resolve nor be recomputed; statuses are stale.
	before, _ := s.e.Status("edge", "eu")
	ctx := context.Background()
	if err := s.conn.Exec(ctx, "RENAME TABLE slo_minutes TO slo_minutes_away"); err != nil {
		t.Fatal(err)
	}
	s.badEU = func(time.Time) bool { return false }
	for i := 0; i < 3; i++ {
		s.clock.t = s.clock.t.Add(5 * time.Minute)
		if err := s.e.Cycle(ctx); err == nil {
			t.Fatal("cycle without slo_minutes succeeded")
		}
	}
	st, _ := s.e.Status("edge", "eu")
	if !st.Stale || !s.firing("eu", "page-1h-5m") || *st.BurnRates["5m"] != *before.BurnRates["5m"] || st.Error == "" {
		t.Errorf("on error: stale=%v firing=%v burn5m=%v (was %v) error=%q", st.Stale, s.firing("eu", "page-1h-5m"), *st.BurnRates["5m"], *before.BurnRates["5m"], st.Error)
	}
	if n := testutil.ToFloat64(s.e.metrics.errors.WithLabelValues("record")) + testutil.ToFloat64(s.e.metrics.errors.WithLabelValues("evaluate")); n != 3 {
		t.Errorf("cycle errors counted: %v, want 3", n)
	}
	if v := testutil.ToFloat64(s.e.metrics.stale.WithLabelValues("edge", "eu")); v != 1 {
		t.Errorf("stale gauge %v", v)
	}
	// ClickHouse is back: fresh figures, and the page clears on real data.
	if err := s.conn.Exec(ctx, "RENAME TABLE slo_minutes_away TO slo_minutes"); err != nil {
		t.Fatal(err)
	}
	s.advance(15 * time.Second)
	st, _ = s.e.Status("edge", "eu")
	if st.Stale || s.firing("eu", "page-1h-5m") {
		t.Errorf("after recovery: stale=%v firing=%v", st.Stale, s.firing("eu", "page-1h-5m"))
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	r, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	if r.StatusCode != 200 {
		t.Fatalf("GET %s: %d", url, r.StatusCode)
	}
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}
