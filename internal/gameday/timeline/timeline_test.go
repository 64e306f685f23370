package timeline

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/go-cmp/cmp"
)

func f(v float64) *float64 { return &v }

func TestSummarize(t *testing.T) {
	rs := []Result{
		{Region: "eu", Detect: f(50), Act: f(51), Recover: f(300)},
		{Region: "us", Detect: nil},
		{Region: "eu", Detect: f(60), Act: f(61), Recover: nil},
	}
	want := []Summary{
		{Region: "eu", Drills: 2, Detected: 2, MTTD: f(55), MTTA: f(56), MTTR: f(300)},
		{Region: "us", Drills: 1},
	}
	if d := cmp.Diff(want, Summarize(rs)); d != "" {
		t.Errorf("Summarize (-want +got):\n%s", d)
	}
}

func TestHandlerWithoutClickHouse(t *testing.T) {
	h := Handler(func() driver.Conn { return nil })
	for _, path := range []string{"/api/v1/gamedays", "/api/v1/gamedays/x"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != http.StatusServiceUnavailable {
			t.Errorf("GET %s without ClickHouse: %d, want 503", path, rec.Code)
		}
	}
}
