package web

import (
	"context"
	"net/http"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// SLOSpark is one SLO × group's burn rate over the range, for the
// overview's sparklines: the highest burn rate of the window in each step
// (null where nothing was evaluated or the window had no data).
type SLOSpark struct {
	SLO   string     `json:"slo"`
	Group string     `json:"group"`
	Burn  []*float64 `json:"burn"`
}

// sloSparklines answers GET /api/v1/slo-status/sparklines: every SLO ×
// group's burn rate over one window (window=1h by default) by step
// (default: 48 points over the range, 24h by default), in columns sharing t.
func (s *Server) sloSparklines(ctx context.Context, conn driver.Conn, r *http.Request) (any, error) {
	v := r.URL.Query()
	if v.Get("range") == "" && v.Get("from") == "" {
		v.Set("range", "24h")
		r = r.Clone(ctx)
		r.URL.RawQuery = v.Encode()
	}
	q, err := s.parse(r, []string{"slo", "region"}, "window")
	if err != nil {
		return nil, err
	}
	window := v.Get("window")
	if window == "" {
		window = "1h"
	}
	if len(window) > 16 {
		return nil, badParam{"window: expected a window name such as 1h, got a value longer than 16 characters"}
	}
	if v.Get("step") == "" {
		q.Step = (q.To.Sub(q.From) / 48).Truncate(time.Minute)
		if q.Step < time.Minute {
			q.Step = time.Minute
		}
	}
	step := int64(q.Step / time.Second)
	first := q.From.Unix() / step * step
	n := int((q.To.Unix()-first)/step) + 1
	w, args := where(q, [][2]string{{"slo", "slo"}, {"region", "grp"}})
	sql := `SELECT slo, grp, toUInt32(intDiv(toUInt32(time), ?) * ?) AS b,
	maxIf(arrayElement(burn_rates, indexOf(burn_windows, ?)),
		indexOf(burn_windows, ?) > 0 AND arrayElement(burn_has_data, indexOf(burn_windows, ?)) = 1) AS burn,
	countIf(indexOf(burn_windows, ?) > 0 AND arrayElement(burn_has_data, indexOf(burn_windows, ?)) = 1) AS n
FROM slo_status WHERE time >= toDateTime(?) AND time < toDateTime(?)` + w + `
GROUP BY slo, grp, b ORDER BY slo, grp, b LIMIT 200000`
	all := append([]any{step, step, window, window, window, window, window, q.From.Unix(), q.To.Unix()}, args...)
	rows, err := conn.Query(ctx, sql, all...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	ts := make([]int64, n)
	for i := range ts {
		ts[i] = first + int64(i)*step
	}
	var out []*SLOSpark
	index := map[[2]string]*SLOSpark{}
	for rows.Next() {
		var (
			slo, grp string
			b        uint32
			burn     float64
			cnt      uint64
		)
		if err := rows.Scan(&slo, &grp, &b, &burn, &cnt); err != nil {
			return nil, err
		}
		k := [2]string{slo, grp}
		sp := index[k]
		if sp == nil {
			sp = &SLOSpark{SLO: slo, Group: grp, Burn: make([]*float64, n)}
			index[k] = sp
			out = append(out, sp)
		}
		if i := int((int64(b) - first) / step); i >= 0 && i < n && cnt > 0 {
			sp.Burn[i] = num(burn)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if out == nil {
		out = []*SLOSpark{}
	}
	return map[string]any{"from": q.From, "to": q.To, "step_seconds": step, "window": window, "t": ts, "series": out}, nil
}
