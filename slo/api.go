package slo

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/meridian-obs/meridian/internal/httpx"
	"github.com/meridian-obs/meridian/pipeline/store"
)

// ListHandler is GET /api/v1/slos: every SLO × group status.
func (e *Engine) ListHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp := struct {
			SLOs       []Status `json:"slos"`
			LoadErrors []string `json:"load_errors"`
		}{SLOs: e.Statuses(), LoadErrors: []string{}}
		if resp.SLOs == nil {
			resp.SLOs = []Status{}
		}
		if err := e.LoadError(); err != nil {
			resp.LoadErrors = strings.Split(err.Error(), "\n")
		}
		httpx.JSON(w, http.StatusOK, resp)
	})
}

// HistoryPoint is one row of slo_status.
type HistoryPoint struct {
	Time                 time.Time           `json:"time"`
	HasData              bool                `json:"has_data"`
	Stale                bool                `json:"stale"`
	Good                 uint64              `json:"good"`
	Total                uint64              `json:"total"`
	SLI                  *float64            `json:"sli"`
	ErrorBudgetRemaining *float64            `json:"error_budget_remaining"`
	BurnRates            map[string]*float64 `json:"burn_rates"`
	Firing               []string            `json:"firing"`
}

// SLODetail is the body of GET /api/v1/slos/{name}.
type SLODetail struct {
	SLO          *Spec                     `json:"slo"`
	Groups       []Status                  `json:"groups"`
	History      map[string][]HistoryPoint `json:"history"`
	HistoryError string                    `json:"history_error,omitempty"`
}

// MaxHistory bounds ?history=.
const MaxHistory = 7 * 24 * time.Hour

// GetHandler is GET /api/v1/slos/{name}[?history=24h]: the SLO, its groups'
// statuses and their history from slo_status.
func (e *Engine) GetHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		spec, ok := e.Spec(name)
		if !ok {
			httpx.NotFound(w, "no SLO named %q", name)
			return
		}
		span := 24 * time.Hour
		if h := r.URL.Query().Get("history"); h != "" {
			d, err := ParseDuration(h)
			if err != nil || d <= 0 || d > MaxHistory {
				httpx.BadRequest(w, "history: expected a duration up to 7d (e.g. 6h, 1d), got %q", h)
				return
			}
			span = d
		}
		resp := SLODetail{SLO: spec, Groups: []Status{}, History: map[string][]HistoryPoint{}}
		for _, s := range e.Statuses() {
			if s.SLO == name {
				resp.Groups = append(resp.Groups, s)
			}
		}
		hist, err := e.History(r.Context(), name, e.now().Add(-span))
		if err != nil {
			e.log.Warn("SLO history unavailable", "slo", name, "err", err)
			resp.HistoryError = "history unavailable: ClickHouse query failed"
		} else {
			resp.History = hist
		}
		httpx.JSON(w, http.StatusOK, resp)
	})
}

// History reads an SLO's status history since from, by group.
func (e *Engine) History(ctx context.Context, name string, from time.Time) (map[string][]HistoryPoint, error) {
	conn := e.deps.Store.Conn()
	if conn == nil {
		return nil, fmt.Errorf("ClickHouse is not connected")
	}
	rows, err := conn.Query(ctx, fmt.Sprintf(`SELECT time, grp, has_data, stale, good, total, sli, budget_remaining, burn_windows, burn_rates, burn_has_data, firing
FROM slo_status WHERE slo = %s AND time >= toDateTime(%d) ORDER BY grp, time LIMIT 200000`, store.Quote(name), from.Unix()))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string][]HistoryPoint{}
	for rows.Next() {
		var p HistoryPoint
		var grp string
		var hasData, stale uint8
		var sli, rem float64
		var names []string
		var rates []float64
		var has []uint8
		if err := rows.Scan(&p.Time, &grp, &hasData, &stale, &p.Good, &p.Total, &sli, &rem, &names, &rates, &has, &p.Firing); err != nil {
			return nil, err
		}
		p.Time = p.Time.UTC()
		p.HasData, p.Stale = hasData == 1, stale == 1
		if p.HasData {
			p.SLI, p.ErrorBudgetRemaining = &sli, &rem
		}
		p.BurnRates = map[string]*float64{}
		for i, n := range names {
			if i < len(rates) && i < len(has) && has[i] == 1 {
				v := rates[i]
				p.BurnRates[n] = &v
			} else {
				p.BurnRates[n] = nil
			}
		}
		out[grp] = append(out[grp], p)
	}
	return out, rows.Err()
}
