package web

import (
	"context"
	"net/http"
	"sort"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// History endpoints over the tables the SLO evaluator and the alerting
// component write (slo_status, alerts). The live state (GET /api/v1/slos,
// /api/v1/alerts) is served by those components.

func (s *Server) mountSLOData() {
	s.Mount("GET /api/v1/slo-status", Viewer, s.dataHandler(s.sloLatest))
	s.Mount("GET /api/v1/slo-status/sparklines", Viewer, s.dataHandler(s.sloSparklines))
	s.Mount("GET /api/v1/slos/{name}/history", Viewer, s.dataHandler(s.sloHistory))
	s.Mount("GET /api/v1/alert-events", Viewer, s.dataHandler(s.alertEvents))
}

// SLOCell is the latest evaluation of one SLO for one group.
type SLOCell struct {
	SLO             string              `json:"slo"`
	Group           string              `json:"group"`
	Time            time.Time           `json:"time"`
	Objective       float64             `json:"objective"`
	HasData         bool                `json:"has_data"`
	Stale           bool                `json:"stale"`
	SLI             *float64            `json:"sli"`
	BudgetRemaining *float64            `json:"error_budget_remaining"`
	BurnRates       map[string]*float64 `json:"burn_rates"`
	Firing          []string            `json:"firing"`
}

func burnMap(names []string, rates []float64, has []uint8) map[string]*float64 {
	m := map[string]*float64{}
	for i, n := range names {
		if i < len(rates) && i < len(has) && has[i] == 1 {
			m[n] = num(rates[i])
		} else {
			m[n] = nil
		}
	}
	return m
}

// sloLatest returns the latest status row of every SLO × group within the
// range (default 6h), filtered by slo and region (the group).
func (s *Server) sloLatest(ctx context.Context, conn driver.Conn, r *http.Request) (any, error) {
	q, err := s.parse(r, []string{"slo", "region"})
	if err != nil {
		return nil, err
	}
	w, args := where(q, [][2]string{{"slo", "slo"}, {"region", "grp"}})
	sql := `SELECT slo, grp, max(time), argMax(objective, time), argMax(has_data, time), argMax(stale, time),
	argMax(sli, time), argMax(budget_remaining, time), argMax(burn_windows, time), argMax(burn_rates, time),
	argMax(burn_has_data, time), argMax(firing, time)
FROM slo_status WHERE time >= toDateTime(?) AND time < toDateTime(?)` + w + `
GROUP BY slo, grp ORDER BY slo, grp LIMIT 10000`
	rows, err := conn.Query(ctx, sql, append([]any{q.From.Unix(), q.To.Unix()}, args...)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cells := []SLOCell{}
	for rows.Next() {
		var (
			c           SLOCell
			hasData, st uint8
			sli, budget float64
			names       []string
			rates       []float64
			has         []uint8
		)
		if err := rows.Scan(&c.SLO, &c.Group, &c.Time, &c.Objective, &hasData, &st, &sli, &budget, &names, &rates, &has, &c.Firing); err != nil {
			return nil, err
		}
		c.HasData, c.Stale = hasData == 1, st == 1
		if c.HasData {
			c.SLI, c.BudgetRemaining = num(sli), num(budget)
		}
		c.BurnRates = burnMap(names, rates, has)
		c.Time = c.Time.UTC()
		if c.Firing == nil {
			c.Firing = []string{}
		}
		cells = append(cells, c)
	}
	return map[string]any{"from": q.From, "to": q.To, "statuses": cells}, rows.Err()
}

// SLOHistory is one SLO × group over time, in columns.
type SLOHistory struct {
	SLO         string                `json:"slo"`
	Group       string                `json:"group"`
	StepSeconds int64                 `json:"step_seconds"`
	Objective   *float64              `json:"objective"`
	T           []int64               `json:"t"`
	SLI         []*float64            `json:"sli"`
	Budget      []*float64            `json:"error_budget_remaining"`
	Burn        map[string][]*float64 `json:"burn_rates"`
	Groups      []string              `json:"groups"`
}

func (s *Server) sloHistory(ctx context.Context, conn driver.Conn, r *http.Request) (any, error) {
	q, err := s.parse(r, []string{"region"})
	if err != nil {
		return nil, err
	}
	name := r.PathValue("name")
	if !validFilter(name) {
		return nil, badParam{"slo name: expected printable text"}
	}
	from, to := q.From.Unix(), q.To.Unix()
	out := SLOHistory{SLO: name, StepSeconds: int64(q.Step / time.Second), T: []int64{}, SLI: []*float64{},
		Budget: []*float64{}, Burn: map[string][]*float64{}, Groups: []string{}}
	rows, err := conn.Query(ctx, `SELECT DISTINCT grp FROM slo_status WHERE slo = ? AND time >= toDateTime(?) AND time < toDateTime(?) ORDER BY grp LIMIT 1000`, name, from, to)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var g string
		if err := rows.Scan(&g); err != nil {
			rows.Close()
			return nil, err
		}
		out.Groups = append(out.Groups, g)
	}
	rows.Close()
	out.Group = q.Filters["region"]
	if out.Group == "" && len(out.Groups) > 0 {
		out.Group = out.Groups[0]
	}
	step := out.StepSeconds
	rows, err = conn.Query(ctx, `SELECT toUInt32(intDiv(toUInt32(time), ?) * ?) AS b, argMax(objective, time), argMax(has_data, time),
	argMax(sli, time), argMax(budget_remaining, time), argMax(burn_windows, time), argMax(burn_rates, time), argMax(burn_has_data, time)
FROM slo_status WHERE slo = ? AND grp = ? AND time >= toDateTime(?) AND time < toDateTime(?)
GROUP BY b ORDER BY b`, step, step, name, out.Group, from, to)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	type point struct{ burn map[string]*float64 }
	var pts []point
	windows := map[string]bool{}
	for rows.Next() {
		var (
			b            uint32
			obj, sli, bg float64
			hd           uint8
			names        []string
			rates        []float64
			has          []uint8
		)
		if err := rows.Scan(&b, &obj, &hd, &sli, &bg, &names, &rates, &has); err != nil {
			return nil, err
		}
		out.Objective = num(obj)
		out.T = append(out.T, int64(b))
		if hd == 1 {
			out.SLI, out.Budget = append(out.SLI, num(sli)), append(out.Budget, num(bg))
		} else {
			out.SLI, out.Budget = append(out.SLI, nil), append(out.Budget, nil)
		}
		m := burnMap(names, rates, has)
		for k := range m {
			windows[k] = true
		}
		pts = append(pts, point{m})
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	ws := make([]string, 0, len(windows))
	for w := range windows {
		ws = append(ws, w)
	}
	sort.Strings(ws)
	for _, w := range ws {
		col := make([]*float64, len(pts))
		for i, p := range pts {
			col[i] = p.burn[w]
		}
		out.Burn[w] = col
	}
	return out, nil
}

// AlertEvent is one alert state change from the alerts table.
type AlertEvent struct {
	Time        time.Time         `json:"time"`
	Fingerprint string            `json:"fingerprint"`
	Source      string            `json:"source"`
	Status      string            `json:"status"`
	Alertname   string            `json:"alertname"`
	SLO         string            `json:"slo"`
	Severity    string            `json:"severity"`
	Labels      map[string]string `json:"labels"`
	Summary     string            `json:"summary,omitempty"`
	Description string            `json:"description,omitempty"`
	StartsAt    time.Time         `json:"starts_at"`
	EndsAt      *time.Time        `json:"ends_at"`
}

func (s *Server) alertEvents(ctx context.Context, conn driver.Conn, r *http.Request) (any, error) {
	q, err := s.parse(r, []string{"slo", "severity", "status"}, "limit")
	if err != nil {
		return nil, err
	}
	limit, err := limitParam(q.Values, 500, 5000)
	if err != nil {
		return nil, badParam{err.Error()}
	}
	w, args := where(q, [][2]string{{"slo", "slo"}, {"severity", "severity"}, {"status", "status"}})
	sql := `SELECT time, fingerprint, source, status, alertname, slo, severity, label_names, label_values,
	annotation_names, annotation_values, starts_at, ends_at
FROM alerts WHERE time >= toDateTime(?) AND time < toDateTime(?)` + w + `
ORDER BY time DESC LIMIT ?`
	all := append([]any{q.From.Unix(), q.To.Unix()}, args...)
	rows, err := conn.Query(ctx, sql, append(all, limit)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	evs := []AlertEvent{}
	for rows.Next() {
		var (
			e              AlertEvent
			ln, lv, an, av []string
			ends           time.Time
		)
		if err := rows.Scan(&e.Time, &e.Fingerprint, &e.Source, &e.Status, &e.Alertname, &e.SLO, &e.Severity,
			&ln, &lv, &an, &av, &e.StartsAt, &ends); err != nil {
			return nil, err
		}
		e.Labels = map[string]string{}
		for i := range ln {
			if i < len(lv) {
				e.Labels[ln[i]] = lv[i]
			}
		}
		for i := range an {
			if i >= len(av) {
				continue
			}
			switch an[i] {
			case "summary":
				e.Summary = av[i]
			case "description":
				e.Description = av[i]
			}
		}
		e.Time, e.StartsAt = e.Time.UTC(), e.StartsAt.UTC()
		if ends.Unix() > 0 {
			u := ends.UTC()
			e.EndsAt = &u
		}
		evs = append(evs, e)
	}
	return map[string]any{"from": q.From, "to": q.To, "events": evs}, rows.Err()
}
