package slo

import (
	"context"
	"sort"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// MinuteSpan: windows up to this long are summed from slo_minutes; longer
// ones from slo_hours for their whole hours plus slo_minutes for the partial
// hours at both ends. A 30-day window thus reads ~720 hour rows and at most
// ~120 minute rows per series.
const MinuteSpan = 6 * time.Hour

// WindowName of the SLO's whole window in BurnRates.
const WindowName = "window"

type tRange struct {
	hours  bool
	lo, hi int64 // unix seconds, [lo, hi)
}

// windowPlan: for each SLO, its windows and the ranges summing to each.
type windowPlan struct {
	ranges []tRange
	index  map[tRange]int
}

func (p *windowPlan) add(r tRange) int {
	if i, ok := p.index[r]; ok {
		return i
	}
	p.index[r] = len(p.ranges)
	p.ranges = append(p.ranges, r)
	return len(p.ranges) - 1
}

// split returns the ranges whose sum is [start, end).
func (p *windowPlan) split(start, end time.Time) []int {
	if !start.Before(end) {
		return nil
	}
	if end.Sub(start) <= MinuteSpan {
		return []int{p.add(tRange{false, start.Unix(), end.Unix()})}
	}
	var out []int
	hs, he := ceilHour(start), floorHour(end)
	if start.Before(hs) {
		out = append(out, p.add(tRange{false, start.Unix(), hs.Unix()}))
	}
	if hs.Before(he) {
		out = append(out, p.add(tRange{true, hs.Unix(), he.Unix()}))
	}
	if he.Before(end) {
		out = append(out, p.add(tRange{false, he.Unix(), end.Unix()}))
	}
	return out
}

// windowsOf lists the windows of an SLO: the standard ones, the policy's
// and the SLO window.
func windowsOf(s *Spec, end time.Time) ([]string, map[string]time.Time) {
	starts := map[string]time.Time{}
	var names []string
	addD := func(d time.Duration) {
		n := FormatDuration(d)
		if _, ok := starts[n]; !ok {
			starts[n] = end.Add(-d)
			names = append(names, n)
		}
	}
	for _, d := range StandardWindows {
		addD(d)
	}
	for _, r := range s.Alerting.Rules {
		addD(r.LongWindow.D())
		addD(r.ShortWindow.D())
	}
	starts[WindowName] = s.WindowStart(end)
	names = append(names, WindowName)
	return names, starts
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// windowLength is the length of the SLO window that ends at end (calendar
// windows: the whole period).
func windowLength(s *Spec, end time.Time) time.Duration {
	start := s.WindowStart(end)
	switch s.Calendar {
	case "month":
		return start.AddDate(0, 1, 0).Sub(start)
	case "week":
		return 7 * 24 * time.Hour
	}
	return s.Window.D()
}

// compute derives a status from the window counts; the alert states come
// from the previous status.
func (e *Engine) compute(s *Spec, grp string, now, end time.Time, counts map[string]Counts, starts map[string]time.Time) Status {
	st := Status{
		SLO: s.Name, Group: grp, GroupBy: s.GroupBy, GroupLabel: s.GroupLabel,
		Objective: s.Objective, Window: s.WindowName(), Budgeting: s.Budgeting, Time: now,
		BurnRates: map[string]*float64{}, WindowCounts: counts, Spec: s,
	}
	for n, c := range counts {
		st.BurnRates[n] = Burn(c, s.Objective)
	}
	wc := counts[WindowName]
	st.Good, st.Total = wc.Good, wc.Total
	if wc.Total > 0 {
		st.HasData = true
		st.SLI = ratio(wc.Good, wc.Total)
		rem := 1 - *st.BurnRates[WindowName]
		st.ErrorBudgetRemaining = &rem
		b := st.BurnRates["1h"]
		st.Forecast.BurnRate = b
		switch {
		case rem <= 0:
			z := 0.0
			st.Forecast.TimeToExhaustionSeconds = &z
			t := now
			st.Forecast.ExhaustedAt = &t
		case b != nil && *b > 0:
			secs := rem * windowLength(s, end).Seconds() / *b
			st.Forecast.TimeToExhaustionSeconds = &secs
			t := now.Add(time.Duration(secs * float64(time.Second))).UTC().Truncate(time.Second)
			st.Forecast.ExhaustedAt = &t
		}
	}
	cov := e.coverage(s)
	st.CoveredFrom = cov
	st.Backfilling = !cov.IsZero() && cov.After(s.needed(end))
	if err := e.recErr(s.Name); err != nil {
		st.Stale = true
		st.Error = err.Error()
	}
	prev, hadPrev := e.Status(s.Name, grp)
	if s.Alerting.Disabled {
		return st
	}
	for _, r := range s.Alerting.Rules {
		ln, sn := FormatDuration(r.LongWindow.D()), FormatDuration(r.ShortWindow.D())
		c := Condition{Name: r.Name(), Severity: r.Severity, LongWindow: ln, ShortWindow: sn, Factor: r.Factor,
			LongBurn: st.BurnRates[ln], ShortBurn: st.BurnRates[sn]}
		var was Condition
		if hadPrev {
			for _, pc := range prev.Conditions {
				if pc.Name == c.Name {
					was = pc
				}
			}
		}
		covered := cov.IsZero() || !starts[ln].Before(cov)
		switch {
		case c.LongBurn == nil || c.ShortBurn == nil || !covered:
			c.State = CondNoData
		case *c.LongBurn >= r.Factor && *c.ShortBurn >= r.Factor:
			c.State = CondFiring
		default:
			c.State = CondOK
		}
		c.Firing, c.Since = was.Firing, was.Since
		if !st.Stale && c.State != CondNoData {
			f := c.State == CondFiring
			if f != was.Firing || c.Since.IsZero() {
				c.Since = now
			}
			c.Firing = f
		}
		if c.Since.IsZero() {
			c.Since = now
		}
		st.Conditions = append(st.Conditions, c)
	}
	return st
}

// apply stores the statuses, exports them as metrics and tells listeners.
func (e *Engine) apply(now time.Time, statuses []Status) {
	e.mu.Lock()
	seen := map[key]bool{}
	for _, s := range statuses {
		k := key{s.SLO, s.Group}
		seen[k] = true
		e.statuses[k] = s
		e.metrics.export(s)
	}
	for k := range e.statuses {
		if !seen[k] {
			// No row at all for this series in any window any more.
			delete(e.statuses, k)
			e.metrics.forget(k.slo, k.group)
		}
	}
	ls := append([]Listener(nil), e.listeners...)
	e.mu.Unlock()
	sort.Slice(statuses, func(i, j int) bool {
		if statuses[i].SLO != statuses[j].SLO {
			return statuses[i].SLO < statuses[j].SLO
		}
		return statuses[i].Group < statuses[j].Group
	})
	for _, l := range ls {
		l(now, statuses)
	}
}

func (e *Engine) writeHistory(ctx context.Context, conn driver.Conn, now time.Time, statuses []Status) error {
	if len(statuses) == 0 {
		return nil
	}
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO slo_status (time, slo, grp, objective, has_data, stale, good, total, sli, budget_remaining, burn_windows, burn_rates, burn_has_data, firing)")
	if err != nil {
		return err
	}
	for _, s := range statuses {
		var names []string
		for n := range s.BurnRates {
			names = append(names, n)
		}
		sort.Strings(names)
		rates := make([]float64, len(names))
		has := make([]uint8, len(names))
		for i, n := range names {
			if b := s.BurnRates[n]; b != nil {
				rates[i], has[i] = *b, 1
			}
		}
		var firing []string
		for _, c := range s.Conditions {
			if c.Firing {
				firing = append(firing, c.Name)
			}
		}
		if firing == nil {
			firing = []string{}
		}
		sli, rem := 0.0, 0.0
		if s.SLI != nil {
			sli, rem = *s.SLI, *s.ErrorBudgetRemaining
		}
		if err := batch.Append(now, s.SLO, s.Group, s.Objective, uint8(b2i(s.HasData)), uint8(b2i(s.Stale)), s.Good, s.Total,
			sli, rem, names, rates, has, firing); err != nil {
			_ = batch.Abort()
			return err
		}
	}
	return batch.Send()
}
