package web

import (
	"context"
	"math"
	"net/http"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/meridian-obs/meridian/internal/httpx"
	"github.com/meridian-obs/meridian/pipeline/store"
)

func (s *Server) mountData() {
	s.Mount("GET /api/v1/probes/series", Viewer, s.dataHandler(s.probeSeries))
	s.Mount("GET /api/v1/probes/summary", Viewer, s.dataHandler(s.probeSummary))
	s.Mount("GET /api/v1/probes/matrix", Viewer, s.dataHandler(s.probeMatrix))
	s.Mount("GET /api/v1/filters", Viewer, s.dataHandler(s.filterValues))
	s.Mount("GET /api/v1/flows/top", Viewer, s.dataHandler(s.flowTop))
	s.Mount("GET /api/v1/flows/matrix", Viewer, s.dataHandler(s.flowMatrix))
	s.Mount("GET /api/v1/flows/series", Viewer, s.dataHandler(s.flowSeries))
	s.Mount("GET /api/v1/firewall/top", Viewer, s.dataHandler(s.firewallTop))
	s.Mount("GET /api/v1/firewall/series", Viewer, s.dataHandler(s.firewallSeries))
}

// badParam is a client error found while reading parameters.
type badParam struct{ msg string }

func (e badParam) Error() string { return e.msg }

type dataFunc func(ctx context.Context, conn driver.Conn, r *http.Request) (any, error)

// dataHandler runs a ClickHouse-backed endpoint: 503 without a connection,
// 400 for bad parameters, 500 (details logged only) for query errors.
func (s *Server) dataHandler(f dataFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var conn driver.Conn
		if s.deps.Conn != nil {
			conn = s.deps.Conn()
		}
		if conn == nil {
			httpx.Error(w, http.StatusServiceUnavailable, "unavailable", "ClickHouse is not connected yet")
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 20*time.Second)
		defer cancel()
		v, err := f(ctx, conn, r)
		if err != nil {
			if bp, ok := err.(badParam); ok {
				httpx.BadRequest(w, "%s", bp.msg)
				return
			}
			s.log.Error("data query failed", "path", r.URL.Path, "err", err)
			httpx.Internal(w)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		httpx.JSON(w, http.StatusOK, v)
	})
}

func (s *Server) parse(r *http.Request, allowed []string, extra ...string) (query, error) {
	q, err := parseQuery(r.URL.Query(), time.Now(), allowed, extra...)
	if err != nil {
		return q, badParam{err.Error()}
	}
	return q, nil
}

var probeFilters = []string{"src_region", "target_region", "region", "site", "target", "check"}

var probeFilterCols = [][2]string{{"src_region", "src_region"}, {"target_region", "target_region"},
	{"target", "target"}, {"check", "check_name"}}

// probeWhere adds region (source or target region) and site (source or
// target site) to the plain column filters.
func probeWhere(q query) (string, []any) {
	w, args := where(q, probeFilterCols)
	if v, ok := q.Filters["region"]; ok {
		w += " AND (src_region = ? OR target_region = ?)"
		args = append(args, v, v)
	}
	if v, ok := q.Filters["site"]; ok {
		w += " AND (src_site = ? OR target_site = ?)"
		args = append(args, v, v)
	}
	return w, args
}

// probeTable picks the rollup of a series: the daily one for ranges over 7
// days, the hourly one (rows keyed by path) for ranges over 12 hours or
// steps of whole hours, else the 5-minute one (keyed by time first). The
// step is widened to a multiple of the table's bucket. (probeSeries reads
// probe_rollup_region_1h instead of the hourly and daily ones when the only
// filter is region.)
func probeTable(q *query) string {
	widen := func(g time.Duration) {
		if q.Step < g || q.Step%g != 0 {
			q.Step = ((q.Step + g - 1) / g) * g
		}
	}
	span := q.To.Sub(q.From)
	switch {
	case span > 7*24*time.Hour || (q.Step >= 24*time.Hour && q.Step%(24*time.Hour) == 0):
		widen(24 * time.Hour)
		return "probe_rollup_1d"
	case span > 12*time.Hour || (q.Step >= time.Hour && q.Step%time.Hour == 0):
		widen(time.Hour)
		return "probe_rollup_1h"
	}
	widen(5 * time.Minute)
	return "probe_rollup_5m"
}

// alignFrom widens the start of the range to the rollup's bucket, so that a
// bucket is never cut in half (ranges are counted in whole buckets).
func alignFrom(q *query, table string) {
	g := map[string]int64{"probe_rollup_5m": 300, "probe_rollup_1h": 3600, "probe_rollup_1d": 86400}[table]
	q.From = time.Unix(q.From.Unix()/g*g, 0).UTC()
}

// rangeTable picks the rollup for a whole-range aggregate (the range is
// then widened to whole buckets: hours above 12 hours, days above 3 days).
func rangeTable(q query) string {
	switch span := q.To.Sub(q.From); {
	case span > 3*24*time.Hour:
		return "probe_rollup_1d"
	case span > 12*time.Hour:
		return "probe_rollup_1h"
	}
	return "probe_rollup_5m"
}

// bandLevels are the quantiles of the smoke band.
var bandLevels = []float64{0.05, 0.25, 0.5, 0.75, 0.95}

// histSQL selects the sum of probe RTT histograms (store.ProbeHistBins) as
// two columns, the bins and their counts, that denseHist reads.
const histSQL = "tupleElement(sumMap(`rtt_histMap.bin`, `rtt_histMap.n`) AS h, 1), tupleElement(h, 2)"

// denseHist spreads a sparse histogram (bins, counts) over every bin.
func denseHist(bins []uint8, counts []uint64) []uint64 {
	h := make([]uint64, store.ProbeHistBins)
	for i, b := range bins {
		if int(b) < len(h) && i < len(counts) {
			h[b] += counts[i]
		}
	}
	return h
}

// histQuantiles reads quantiles from a probe RTT histogram (see
// store.ProbeHistBins): the bin holding the rank, interpolated
// geometrically inside it. NaN for every level when the histogram is empty.
func histQuantiles(h []uint64, levels []float64) []float64 {
	out := make([]float64, len(levels))
	var total uint64
	for _, c := range h {
		total += c
	}
	if total == 0 {
		for i := range out {
			out[i] = math.NaN()
		}
		return out
	}
	for i, q := range levels {
		rank := q * float64(total)
		var cum float64
		for b, c := range h {
			if c == 0 {
				continue
			}
			if cum+float64(c) >= rank || b == len(h)-1 {
				frac := (rank - cum) / float64(c)
				frac = math.Max(0, math.Min(1, frac))
				lo := store.ProbeHistBase * math.Pow(store.ProbeHistRatio, float64(b))
				out[i] = lo * math.Pow(store.ProbeHistRatio, frac)
				break
			}
			cum += float64(c)
		}
	}
	return out
}

// num turns NaN and infinities (no data) into JSON null.
func num(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

// ProbeSeries is the smoke chart data, in columns (one entry per step).
type ProbeSeries struct {
	From        time.Time `json:"from"`
	To          time.Time `json:"to"`
	StepSeconds int64     `json:"step_seconds"`
	Source      string    `json:"source"`
	// Quantiles are the levels of the band columns p05 … p95: quantiles of
	// the per-round median RTT (ms) over the answered rounds of the step,
	// read from a log-spaced histogram (within ±7 %).
	Quantiles []float64  `json:"quantiles"`
	T         []int64    `json:"t"`
	Rounds    []uint64   `json:"rounds"`
	Sent      []uint64   `json:"sent"`
	Received  []uint64   `json:"received"`
	Loss      []*float64 `json:"loss"`
	P05       []*float64 `json:"p05"`
	P25       []*float64 `json:"p25"`
	Median    []*float64 `json:"median"`
	P75       []*float64 `json:"p75"`
	P95       []*float64 `json:"p95"`
	Min       []*float64 `json:"min"`
	Max       []*float64 `json:"max"`
	Jitter    []*float64 `json:"jitter"`
}

func (s *Server) probeSeries(ctx context.Context, conn driver.Conn, r *http.Request) (any, error) {
	q, err := s.parse(r, probeFilters)
	if err != nil {
		return nil, err
	}
	table := probeTable(&q)
	alignFrom(&q, table)
	w, args := probeWhere(q)
	if v, ok := q.Filters["region"]; ok && len(q.Filters) == 1 && table != "probe_rollup_5m" {
		// The region view over hours or days: its own rollup, one row per
		// region and hour instead of every path from or to the region.
		table, w, args = "probe_rollup_region_1h", " AND region = ?", []any{v}
	}
	step := int64(q.Step / time.Second)
	sql := `SELECT toUInt32(intDiv(toUInt32(t), ?) * ?) AS b, sum(n_rounds), sum(n_sent), sum(n_received),
	` + histSQL + `, minIfMerge(rtt_min), maxIfMerge(rtt_max), avgIfMerge(jitter)
FROM ` + table + ` WHERE t >= toDateTime(?) AND t < toDateTime(?)` + w + `
GROUP BY b ORDER BY b`
	all := append([]any{step, step, q.From.Unix(), q.To.Unix()}, args...)
	rows, err := conn.Query(ctx, sql, all...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := ProbeSeries{From: q.From, To: q.To, StepSeconds: step, Source: table,
		Quantiles: bandLevels,
		T:         []int64{}, Rounds: []uint64{}, Sent: []uint64{}, Received: []uint64{}, Loss: []*float64{},
		P05: []*float64{}, P25: []*float64{}, Median: []*float64{}, P75: []*float64{}, P95: []*float64{},
		Min: []*float64{}, Max: []*float64{}, Jitter: []*float64{}}
	for rows.Next() {
		var (
			b                  uint32
			rounds, sent, recv uint64
			bins               []uint8
			counts             []uint64
			mn, mx, jit        float64
		)
		if err := rows.Scan(&b, &rounds, &sent, &recv, &bins, &counts, &mn, &mx, &jit); err != nil {
			return nil, err
		}
		qs := histQuantiles(denseHist(bins, counts), bandLevels)
		out.T = append(out.T, int64(b))
		out.Rounds = append(out.Rounds, rounds)
		out.Sent = append(out.Sent, sent)
		out.Received = append(out.Received, recv)
		if sent > 0 {
			out.Loss = append(out.Loss, num(1-float64(recv)/float64(sent)))
		} else {
			out.Loss = append(out.Loss, nil)
		}
		if recv == 0 || len(qs) != 5 {
			qs = []float64{math.NaN(), math.NaN(), math.NaN(), math.NaN(), math.NaN()}
			mn, mx = math.NaN(), math.NaN()
		}
		out.P05 = append(out.P05, num(qs[0]))
		out.P25 = append(out.P25, num(qs[1]))
		out.Median = append(out.Median, num(qs[2]))
		out.P75 = append(out.P75, num(qs[3]))
		out.P95 = append(out.P95, num(qs[4]))
		out.Min = append(out.Min, num(mn))
		out.Max = append(out.Max, num(mx))
		out.Jitter = append(out.Jitter, num(jit))
	}
	return out, rows.Err()
}

// ProbePath is one source region → target series over the range.
type ProbePath struct {
	SrcRegion    string    `json:"src_region"`
	TargetRegion string    `json:"target_region"`
	Target       string    `json:"target"`
	Rounds       uint64    `json:"rounds"`
	Loss         *float64  `json:"loss"`
	Median       *float64  `json:"median_ms"`
	P95          *float64  `json:"p95_ms"`
	Jitter       *float64  `json:"jitter_ms"`
	LastSeen     time.Time `json:"last_seen"`
}

func (s *Server) probeSummary(ctx context.Context, conn driver.Conn, r *http.Request) (any, error) {
	q, err := s.parse(r, probeFilters, "limit")
	if err != nil {
		return nil, err
	}
	limit, err := limitParam(q.Values, 500, 5000)
	if err != nil {
		return nil, badParam{err.Error()}
	}
	table := rangeTable(q)
	alignFrom(&q, table)
	w, args := probeWhere(q)
	sql := `SELECT src_region, target_region, target, sum(n_rounds), sum(n_sent), sum(n_received),
	` + histSQL + `, avgIfMerge(jitter), maxMerge(last_seen)
FROM ` + table + ` WHERE t >= toDateTime(?) AND t < toDateTime(?)` + w + `
GROUP BY src_region, target_region, target ORDER BY target, src_region LIMIT ?`
	all := append([]any{q.From.Unix(), q.To.Unix()}, args...)
	all = append(all, limit)
	rows, err := conn.Query(ctx, sql, all...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	paths := []ProbePath{}
	for rows.Next() {
		var (
			p          ProbePath
			sent, recv uint64
			bins       []uint8
			counts     []uint64
			jit        float64
		)
		if err := rows.Scan(&p.SrcRegion, &p.TargetRegion, &p.Target, &p.Rounds, &sent, &recv, &bins, &counts, &jit, &p.LastSeen); err != nil {
			return nil, err
		}
		qs := histQuantiles(denseHist(bins, counts), bandLevels)
		if sent > 0 {
			p.Loss = num(1 - float64(recv)/float64(sent))
		}
		if recv > 0 && len(qs) == 5 {
			p.Median, p.P95 = num(qs[2]), num(qs[4])
		}
		p.Jitter = num(jit)
		p.LastSeen = p.LastSeen.UTC()
		paths = append(paths, p)
	}
	return map[string]any{"from": q.From, "to": q.To, "source": table, "paths": paths}, rows.Err()
}

// ProbeCell is one source region → target region cell of the matrix.
type ProbeCell struct {
	SrcRegion    string   `json:"src_region"`
	TargetRegion string   `json:"target_region"`
	Loss         *float64 `json:"loss"`
	Median       *float64 `json:"median_ms"`
}

func (s *Server) probeMatrix(ctx context.Context, conn driver.Conn, r *http.Request) (any, error) {
	q, err := s.parse(r, probeFilters)
	if err != nil {
		return nil, err
	}
	table := rangeTable(q)
	alignFrom(&q, table)
	w, args := probeWhere(q)
	sql := `SELECT src_region, target_region, sum(n_sent), sum(n_received),
	` + histSQL + `
FROM ` + table + ` WHERE t >= toDateTime(?) AND t < toDateTime(?)` + w + `
GROUP BY src_region, target_region ORDER BY src_region, target_region LIMIT 10000`
	rows, err := conn.Query(ctx, sql, append([]any{q.From.Unix(), q.To.Unix()}, args...)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cells := []ProbeCell{}
	for rows.Next() {
		var (
			c          ProbeCell
			sent, recv uint64
			bins       []uint8
			counts     []uint64
		)
		if err := rows.Scan(&c.SrcRegion, &c.TargetRegion, &sent, &recv, &bins, &counts); err != nil {
			return nil, err
		}
		qs := histQuantiles(denseHist(bins, counts), bandLevels)
		if sent > 0 {
			c.Loss = num(1 - float64(recv)/float64(sent))
		}
		if recv > 0 && len(qs) == 5 {
			c.Median = num(qs[2])
		}
		cells = append(cells, c)
	}
	return map[string]any{"from": q.From, "to": q.To, "source": table, "cells": cells}, rows.Err()
}

// filterValues lists the values the dashboard's filters offer.
func (s *Server) filterValues(ctx context.Context, conn driver.Conn, r *http.Request) (any, error) {
	q, err := s.parse(r, nil)
	if err != nil {
		return nil, err
	}
	from, to := q.From.Unix(), q.To.Unix()
	regions, sites, targets, devices := map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}
	collect := func(sql string, sets ...map[string]bool) error {
		rows, err := conn.Query(ctx, sql, from, to)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			vals := make([]string, len(sets))
			ptrs := make([]any, len(sets))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				return err
			}
			for i, v := range vals {
				if v != "" {
					sets[i][v] = true
				}
			}
		}
		return rows.Err()
	}
	if err := collect(`SELECT DISTINCT src_region, target_region, src_site, target_site, target FROM `+rangeTable(q)+`
		WHERE t >= toDateTime(?) AND t < toDateTime(?) LIMIT 5000`, regions, regions, sites, sites, targets); err != nil {
		return nil, err
	}
	if err := collect(`SELECT DISTINCT src_region, dst_region, src_site, dst_site FROM flows
		WHERE time_received >= toDateTime(?) AND time_received < toDateTime(?) LIMIT 5000`, regions, regions, sites, sites); err != nil {
		return nil, err
	}
	if err := collect(`SELECT DISTINCT device, region, site FROM firewall_events
		WHERE time >= toDateTime(?) AND time < toDateTime(?) LIMIT 5000`, devices, regions, sites); err != nil {
		return nil, err
	}
	return map[string]any{"regions": sorted(regions), "sites": sorted(sites), "targets": sorted(targets), "devices": sorted(devices)}, nil
}
