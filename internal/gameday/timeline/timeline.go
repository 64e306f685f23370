// Package timeline stores game-day drills and their incident timelines in
// ClickHouse and serves them (GET /api/v1/gamedays). It is separate from
// the simulation so that the server links only this.
package timeline

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/meridian-obs/meridian/internal/httpx"
)

// Event is one entry of the incident timeline.
type Event struct {
	At     time.Time `json:"at"`
	Offset float64   `json:"offset_s"` // seconds since the fault was injected
	Region string    `json:"region"`
	Kind   string    `json:"kind"`
	Detail string    `json:"detail"`
}

// Result is a finished drill.
type Result struct {
	ID     string    `json:"id"`
	Region string    `json:"region"`
	Fault  string    `json:"fault"`
	DryRun bool      `json:"dry_run"`
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	// Durations in seconds; nil when the step never happened.
	// Detect: fault → alert firing. Act: fault → first runbook action.
	// Recover: fault removed → alert resolved and restore done.
	// Restore: fault removed → restore done.
	Detect  *float64 `json:"time_to_detect_s"`
	Act     *float64 `json:"time_to_act_s"`
	Recover *float64 `json:"time_to_recover_s"`
	Restore *float64 `json:"time_to_restore_s"`
	// FaultHeld is how long the fault was in place.
	FaultHeld float64 `json:"fault_s"`
	Outcome   string  `json:"outcome"`
	// OtherRegionsChanged: an alert, a run or a DNS/BGP change touched a
	// region other than the drill's.
	OtherRegionsChanged bool    `json:"other_regions_changed"`
	Events              []Event `json:"events,omitempty"`
}

func orNeg(v *float64) float64 {
	if v == nil {
		return -1
	}
	return *v
}

func ms(t time.Time) uint64 { return uint64(t.UnixMilli()) }

// Store writes a drill and its timeline (tables gamedays and
// gameday_events, migrations 5001–5002).
func Store(ctx context.Context, conn driver.Conn, r *Result) error {
	detail, _ := json.Marshal(map[string]any{"events": len(r.Events)})
	b, err := conn.PrepareBatch(ctx, `INSERT INTO gamedays (id, started_at, start_ms, end_ms, region, fault, dry_run, outcome,
		detect_s, act_s, recover_s, restore_s, fault_s, other_regions_changed, detail)`)
	if err != nil {
		return err
	}
	if err := b.Append(r.ID, r.Start.UTC(), ms(r.Start), ms(r.End), r.Region, r.Fault, b2u(r.DryRun), r.Outcome,
		orNeg(r.Detect), orNeg(r.Act), orNeg(r.Recover), orNeg(r.Restore), r.FaultHeld, b2u(r.OtherRegionsChanged), string(detail)); err != nil {
		return err
	}
	if err := b.Send(); err != nil {
		return err
	}
	if len(r.Events) == 0 {
		return nil
	}
	eb, err := conn.PrepareBatch(ctx, `INSERT INTO gameday_events (gameday_id, time, at_ms, offset_s, region, kind, detail)`)
	if err != nil {
		return err
	}
	for _, e := range r.Events {
		if err := eb.Append(r.ID, e.At.UTC(), ms(e.At), e.Offset, e.Region, e.Kind, e.Detail); err != nil {
			return err
		}
	}
	return eb.Send()
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

func ptr(v float64) *float64 {
	if v < 0 {
		return nil
	}
	return &v
}

// LoadResults returns the latest drills, newest first (without events).
func LoadResults(ctx context.Context, conn driver.Conn, region string, limit int) ([]Result, error) {
	q := `SELECT id, start_ms, end_ms, region, fault, dry_run, outcome, detect_s, act_s, recover_s, restore_s, fault_s,
		other_regions_changed FROM gamedays FINAL`
	var args []any
	if region != "" {
		q += ` WHERE region = ?`
		args = append(args, region)
	}
	q += ` ORDER BY start_ms DESC LIMIT ` + strconv.Itoa(limit)
	rows, err := conn.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Result
	for rows.Next() {
		var (
			r                              Result
			start, end                     uint64
			dry, other                     uint8
			detect, act, recov, rest, held float64
		)
		if err := rows.Scan(&r.ID, &start, &end, &r.Region, &r.Fault, &dry, &r.Outcome, &detect, &act, &recov, &rest, &held, &other); err != nil {
			return nil, err
		}
		r.Start, r.End = time.UnixMilli(int64(start)).UTC(), time.UnixMilli(int64(end)).UTC()
		r.DryRun, r.OtherRegionsChanged = dry == 1, other == 1
		r.Detect, r.Act, r.Recover, r.Restore, r.FaultHeld = ptr(detect), ptr(act), ptr(recov), ptr(rest), held
		out = append(out, r)
	}
	return out, rows.Err()
}

// LoadEvents returns a drill's timeline.
func LoadEvents(ctx context.Context, conn driver.Conn, id string) ([]Event, error) {
	rows, err := conn.Query(ctx, `SELECT at_ms, offset_s, region, kind, detail FROM gameday_events WHERE gameday_id = ? ORDER BY at_ms`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var e Event
		var at uint64
		if err := rows.Scan(&at, &e.Offset, &e.Region, &e.Kind, &e.Detail); err != nil {
			return nil, err
		}
		e.At = time.UnixMilli(int64(at)).UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

// Summary is MTTD and MTTR of one region over the listed drills (seconds;
// nil without a measured drill).
type Summary struct {
	Region   string   `json:"region"`
	Drills   int      `json:"drills"`
	Detected int      `json:"detected"`
	MTTD     *float64 `json:"mttd_s"`
	MTTA     *float64 `json:"mtta_s"`
	MTTR     *float64 `json:"mttr_s"`
}

// Summarize computes per-region means of the measured times.
func Summarize(rs []Result) []Summary {
	type acc struct {
		s          Summary
		d, a, r    float64
		nd, na, nr int
	}
	by := map[string]*acc{}
	var order []string
	for _, r := range rs {
		a := by[r.Region]
		if a == nil {
			a = &acc{s: Summary{Region: r.Region}}
			by[r.Region] = a
			order = append(order, r.Region)
		}
		a.s.Drills++
		if r.Detect != nil {
			a.s.Detected++
			a.d += *r.Detect
			a.nd++
		}
		if r.Act != nil {
			a.a += *r.Act
			a.na++
		}
		if r.Recover != nil {
			a.r += *r.Recover
			a.nr++
		}
	}
	mean := func(sum float64, n int) *float64 {
		if n == 0 {
			return nil
		}
		v := sum / float64(n)
		return &v
	}
	out := make([]Summary, 0, len(order))
	for _, reg := range order {
		a := by[reg]
		a.s.MTTD, a.s.MTTA, a.s.MTTR = mean(a.d, a.nd), mean(a.a, a.na), mean(a.r, a.nr)
		out = append(out, a.s)
	}
	return out
}

// Handler serves GET /api/v1/gamedays (?region=, ?limit=, default 100):
// {"gamedays": [...], "summary": [{region, drills, mttd_s, mtta_s, mttr_s}]}
// and GET /api/v1/gamedays/{id}: the drill with its timeline. Mount it with
// viewer access on both patterns.
func Handler(conn func() driver.Conn) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/gamedays", func(w http.ResponseWriter, r *http.Request) {
		c := conn()
		if c == nil {
			httpx.Error(w, http.StatusServiceUnavailable, "unavailable", "ClickHouse is not connected")
			return
		}
		limit := 100
		if s := r.URL.Query().Get("limit"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 || n > 1000 {
				httpx.BadRequest(w, "limit: expected 1 to 1000, got %q", s)
				return
			}
			limit = n
		}
		rs, err := LoadResults(r.Context(), c, r.URL.Query().Get("region"), limit)
		if err != nil {
			httpx.Error(w, http.StatusBadGateway, "clickhouse", "reading gamedays: %v", err)
			return
		}
		if rs == nil {
			rs = []Result{}
		}
		httpx.JSON(w, http.StatusOK, map[string]any{"gamedays": rs, "summary": Summarize(rs)})
	})
	mux.HandleFunc("GET /api/v1/gamedays/{id}", func(w http.ResponseWriter, r *http.Request) {
		c := conn()
		if c == nil {
			httpx.Error(w, http.StatusServiceUnavailable, "unavailable", "ClickHouse is not connected")
			return
		}
		id := r.PathValue("id")
		rs, err := LoadResults(r.Context(), c, "", 1000)
		if err != nil {
			httpx.Error(w, http.StatusBadGateway, "clickhouse", "reading gamedays: %v", err)
			return
		}
		for _, res := range rs {
			if res.ID == id {
				if res.Events, err = LoadEvents(r.Context(), c, id); err != nil {
					httpx.Error(w, http.StatusBadGateway, "clickhouse", "reading the timeline: %v", err)
					return
				}
				httpx.JSON(w, http.StatusOK, res)
				return
			}
		}
		httpx.NotFound(w, "no game day %q", id)
	})
	return mux
}

// FormatResult prints a drill's figures for the CLI.
func FormatResult(r *Result) string {
	f := func(v *float64) string {
		if v == nil {
			return "—"
		}
		return fmt.Sprintf("%.1fs", *v)
	}
	return fmt.Sprintf("drill %s: region %s, fault %s (held %.1fs), dry_run=%t\n  time to detect  %s\n  time to act     %s\n  time to recover %s (restore %s)\n  outcome %s, other regions changed: %t\n",
		r.ID, r.Region, r.Fault, r.FaultHeld, r.DryRun, f(r.Detect), f(r.Act), f(r.Recover), f(r.Restore), r.Outcome, r.OtherRegionsChanged)
}
