package slo

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/meridian-obs/meridian/pipeline/store"
)

// The evaluator keeps the counts it needs in memory so that a cycle reads
// from ClickHouse only what changed:
//
//   - per series, the minutes of the last MinuteSpan + 1h, the hours of the
//     longest window, and the minutes of the hours where long windows start
//     (their partial first hour);
//   - each cycle the recorder aggregates the late window of raw data into
//     memory and writes the same rows to ClickHouse (two inserts a cycle),
//     so memory and tables hold the same latest counts;
//   - an SLO is loaded whole when first seen and again after the recorder
//     back-filled or caught up on it (flagged by the recorder).
//
// A cycle thus costs one raw-data query per SLO over the late window, two
// inserts, and sums in Go, flat in raw volume and in window length. Every value in
// memory is the latest version of its minute or hour: reads stay exact.

type memSeries struct {
	minutes map[int64]Counts // unix second of the minute
	hours   map[int64]Counts // unix second of the hour
}

type memSLO struct {
	series    map[string]*memSeries
	edgeHours map[int64]bool // hours whose minutes are loaded
}

func (m *memSLO) get(grp string) *memSeries {
	s := m.series[grp]
	if s == nil {
		s = &memSeries{minutes: map[int64]Counts{}, hours: map[int64]Counts{}}
		m.series[grp] = s
	}
	return s
}

func (e *Engine) markDirty(k recKey) {
	if e.memDirty == nil {
		e.memDirty = map[recKey]bool{}
	}
	e.memDirty[k] = true
}

func keyList(ks []recKey) string {
	parts := make([]string, 0, len(ks)+1)
	for _, k := range ks {
		parts = append(parts, fmt.Sprintf("(%s, toUInt64(%d))", store.Quote(k.slo), k.hash))
	}
	parts = append(parts, "('', toUInt64(0))") // never a one-element IN list
	return "(slo, spec_hash) IN (" + strings.Join(parts, ", ") + ")"
}

// loadInto reads rows of table (slo_minutes or slo_hours) FINAL in
// [from, to) for keys and stores them.
func (e *Engine) loadInto(ctx context.Context, conn driver.Conn, hours bool, keys []recKey, from, to time.Time) error {
	table, col := "slo_minutes", "minute"
	if hours {
		table, col = "slo_hours", "hour"
	}
	q := fmt.Sprintf("SELECT slo, spec_hash, grp, toUInt32(%s), good, total FROM %s FINAL WHERE %s AND %s >= toDateTime(%d) AND %s < toDateTime(%d)",
		col, table, keyList(keys), col, from.Unix(), col, to.Unix())
	rows, err := conn.Query(ctx, q)
	if err != nil {
		return fmt.Errorf("load %s: %w", table, err)
	}
	defer rows.Close()
	var k recKey
	var grp string
	var t uint32
	var c Counts
	for rows.Next() {
		if err := rows.Scan(&k.slo, &k.hash, &grp, &t, &c.Good, &c.Total); err != nil {
			return fmt.Errorf("load %s: %w", table, err)
		}
		m := e.mem[k]
		if m == nil {
			continue
		}
		s := m.get(grp)
		if hours {
			s.hours[int64(t)] = c
		} else {
			s.minutes[int64(t)] = c
		}
	}
	return rows.Err()
}

// refresh brings the memory up to date for the windows ending at end.
func (e *Engine) refresh(ctx context.Context, conn driver.Conn, specs []*Spec, end time.Time) error {
	if e.mem == nil {
		e.mem = map[recKey]*memSLO{}
	}
	recentFrom := end.Add(-MinuteSpan - time.Hour)
	live := map[recKey]bool{}
	var full, warm []recKey
	for _, s := range specs {
		k := recKey{s.Name, s.Hash()}
		live[k] = true
		if e.mem[k] == nil || e.memDirty[k] {
			e.mem[k] = &memSLO{series: map[string]*memSeries{}, edgeHours: map[int64]bool{}}
			full = append(full, k)
		} else {
			warm = append(warm, k)
		}
	}
	for k := range e.mem {
		if !live[k] {
			delete(e.mem, k)
		}
	}
	if len(full) > 0 {
		oldest := end
		for _, s := range specs {
			if n := s.needed(end); n.Before(oldest) {
				oldest = n
			}
		}
		if err := e.loadInto(ctx, conn, false, full, recentFrom, end); err != nil {
			return err
		}
		if err := e.loadInto(ctx, conn, true, full, oldest, end); err != nil {
			return err
		}
		for _, k := range full {
			delete(e.memDirty, k)
		}
	}
	// Warm SLOs are kept up to date by the recorder itself (aggregateWarmAll).
	_ = warm
	// Minutes of the partial first hour of long windows.
	byHour := map[int64][]recKey{}
	for _, s := range specs {
		k := recKey{s.Name, s.Hash()}
		_, starts := windowsOf(s, end)
		for _, st := range starts {
			if end.Sub(st) <= MinuteSpan || st.Equal(floorHour(st)) || !st.Before(recentFrom) {
				continue
			}
			h := floorHour(st).Unix()
			if !e.mem[k].edgeHours[h] {
				byHour[h] = append(byHour[h], k)
			}
		}
	}
	for h, ks := range byHour {
		ks = uniqKeys(ks)
		if err := e.loadInto(ctx, conn, false, ks, time.Unix(h, 0), time.Unix(h, 0).Add(time.Hour)); err != nil {
			return err
		}
		for _, k := range ks {
			e.mem[k].edgeHours[h] = true
		}
	}
	// Forget what no window needs any more (once an hour is enough).
	if end.Sub(e.memPruned) >= time.Hour {
		e.memPruned = end
		for _, s := range specs {
			m := e.mem[recKey{s.Name, s.Hash()}]
			oldest := s.needed(end).Unix()
			keep := map[int64]bool{}
			_, starts := windowsOf(s, end)
			for _, st := range starts {
				keep[floorHour(st).Unix()] = true
			}
			for h := range m.edgeHours {
				if !keep[h] {
					delete(m.edgeHours, h)
				}
			}
			for _, sr := range m.series {
				for t := range sr.minutes {
					if t < recentFrom.Unix() && !m.edgeHours[t-t%3600] {
						delete(sr.minutes, t)
					}
				}
				for t := range sr.hours {
					if t < oldest {
						delete(sr.hours, t)
					}
				}
			}
		}
	}
	return nil
}

func uniqKeys(ks []recKey) []recKey {
	seen := map[recKey]bool{}
	out := ks[:0]
	for _, k := range ks {
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}

// sumRange adds the counts of r from memory.
func (s *memSeries) sumRange(r tRange) Counts {
	var c Counts
	if r.hours {
		for t := r.lo; t < r.hi; t += 3600 {
			v := s.hours[t]
			c.Good += v.Good
			c.Total += v.Total
		}
		return c
	}
	for t := r.lo; t < r.hi; t += 60 {
		v := s.minutes[t]
		c.Good += v.Good
		c.Total += v.Total
	}
	return c
}

// evaluateMem computes every status from memory after a refresh.
func (e *Engine) evaluateMem(ctx context.Context, conn driver.Conn, specs []*Spec, now time.Time) ([]Status, error) {
	end := floorMinute(now).Add(time.Minute)
	if err := e.refresh(ctx, conn, specs, end); err != nil {
		return nil, fmt.Errorf("evaluate: %w", err)
	}
	var out []Status
	for _, s := range specs {
		m := e.mem[recKey{s.Name, s.Hash()}]
		names, starts := windowsOf(s, end)
		plan := &windowPlan{index: map[tRange]int{}}
		parts := map[string][]int{}
		for _, n := range names {
			parts[n] = plan.split(starts[n], end)
		}
		n0 := len(out)
		for grp, sr := range m.series {
			sums := make([]Counts, len(plan.ranges))
			for i, r := range plan.ranges {
				sums[i] = sr.sumRange(r)
			}
			counts := map[string]Counts{}
			any := false
			for _, n := range names {
				var c Counts
				for _, i := range parts[n] {
					c.Good += sums[i].Good
					c.Total += sums[i].Total
				}
				counts[n] = c
				any = any || c.Total > 0
			}
			if !any {
				continue
			}
			out = append(out, e.compute(s, grp, now, end, counts, starts))
		}
		if len(out) == n0 {
			counts := map[string]Counts{}
			for _, n := range names {
				counts[n] = Counts{}
			}
			out = append(out, e.compute(s, "", now, end, counts, starts))
		}
	}
	return out, nil
}
