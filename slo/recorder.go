package slo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/meridian-obs/meridian/pipeline/store"
)

// The recorder keeps slo_minutes and slo_hours up to date. For each SLO
// (name and spec hash) it knows [covered_from, recorded_to):
//
//   - forward, every cycle: [recorded_to − late_window, now] is aggregated
//     again from raw data and written with a new version, so late rows land
//     in their own minute and the current minute grows as data arrives;
//   - backward, when the SLO is new or its window grew: chunks of
//     backfill_chunk before covered_from, newest first, until the SLO's
//     longest window is covered (so recent figures are right at once).
//
// Each write re-aggregates whole minutes (and the hours holding them from
// slo_minutes), so a minute's row always holds complete counts; readers use
// FINAL to see only its latest version.

type recKey struct {
	slo  string
	hash uint64
}

type recState struct {
	coveredFrom, recordedTo time.Time
}

func floorMinute(t time.Time) time.Time { return t.UTC().Truncate(time.Minute) }
func floorHour(t time.Time) time.Time   { return t.UTC().Truncate(time.Hour) }
func ceilHour(t time.Time) time.Time {
	f := floorHour(t)
	if f.Equal(t) {
		return f
	}
	return f.Add(time.Hour)
}

// needed is how far back an SLO must be recorded: its window and every
// burn-rate window it reports.
func (s *Spec) needed(end time.Time) time.Time {
	start := s.WindowStart(end)
	for _, w := range StandardWindows {
		if t := end.Add(-w); t.Before(start) {
			start = t
		}
	}
	for _, r := range s.Alerting.Rules {
		if t := end.Add(-r.LongWindow.D()); t.Before(start) {
			start = t
		}
	}
	return floorHour(start)
}

func (e *Engine) loadRecorderState(ctx context.Context, conn driver.Conn) error {
	rows, err := conn.Query(ctx, "SELECT slo, spec_hash, covered_from, recorded_to FROM slo_recorder_state FINAL")
	if err != nil {
		return fmt.Errorf("read slo_recorder_state: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k recKey
		var st recState
		if err := rows.Scan(&k.slo, &k.hash, &st.coveredFrom, &st.recordedTo); err != nil {
			return fmt.Errorf("read slo_recorder_state: %w", err)
		}
		st.coveredFrom, st.recordedTo = st.coveredFrom.UTC(), st.recordedTo.UTC()
		e.rec[k] = &st
	}
	return rows.Err()
}

func (e *Engine) record(ctx context.Context, conn driver.Conn, specs []*Spec, now time.Time) error {
	if !e.recLoaded {
		if err := e.loadRecorderState(ctx, conn); err != nil {
			return err
		}
		e.recLoaded = true
	}
	target := floorMinute(now).Add(time.Minute)
	deadline := time.Now().Add(e.cfg.BackfillBudget)
	var back, saved, warm []todo
	var pending []warmJob
	var batch cycleBatch
	for _, s := range specs {
		k := recKey{s.Name, s.Hash()}
		st := e.rec[k]
		if st == nil {
			h := floorHour(target)
			st = &recState{coveredFrom: h, recordedTo: h}
			e.rec[k] = st
		}
		from := st.recordedTo.Add(-e.cfg.LateWindow)
		if from.Before(st.coveredFrom) {
			from = st.coveredFrom
		}
		from = floorMinute(from)
		if from.Before(target.Add(-e.cfg.LateWindow - time.Minute)) {
			e.markDirty(k) // catching up: more than the late window changes
		}
		var err error
		if m := e.mem[k]; m != nil && !e.memDirty[k] && from.Before(target) {
			// Steady state: aggregated below, several SLOs per query.
			pending = append(pending, warmJob{s: s, st: st, m: m, from: from})
			continue
		}
		// A long outage of the engine: catch up in chunks.
		for from.Before(target) && err == nil {
			to := from.Add(e.cfg.BackfillChunk)
			if to.After(target) {
				to = target
			}
			if err = e.aggregate(ctx, conn, s, from, to); err == nil {
				if to.After(st.recordedTo) {
					st.recordedTo = to
				}
				from = to
			}
		}
		if err == nil {
			err = e.settle(ctx, conn, s, st)
		}
		e.setRecErr(s.Name, err)
		if err == nil {
			saved = append(saved, todo{s, st})
			if st.coveredFrom.After(s.needed(target)) {
				back = append(back, todo{s, st})
			}
		}
	}
	for _, j := range e.aggregateWarmAll(ctx, conn, pending, target, &batch) {
		warm = append(warm, todo{j.s, j.st})
	}
	if len(warm) > 0 {
		if err := batch.send(ctx, conn); err != nil {
			for _, t := range warm {
				e.markDirty(recKey{t.s.Name, t.s.Hash()})
				e.setRecErr(t.s.Name, err)
			}
			return fmt.Errorf("record: %w", err)
		}
		for _, t := range warm {
			t.st.recordedTo = target
			e.settleMem(t.s, t.st)
			saved = append(saved, t)
			if t.st.coveredFrom.After(t.s.needed(target)) {
				back = append(back, t)
			}
		}
	}
	// One insert for every SLO's progress.
	if len(saved) > 0 {
		if err := e.saveStates(ctx, conn, saved); err != nil {
			return err
		}
	}
	// Back-fill, newest chunks first, round-robin over the SLOs, within
	// the cycle's budget (at least one chunk per cycle).
	first := true
	for len(back) > 0 && (first || time.Now().Before(deadline)) {
		first = false
		var next []todo
		for _, t := range back {
			need := t.s.needed(target)
			to := t.st.coveredFrom
			from := to.Add(-e.cfg.BackfillChunk)
			if from.Before(need) {
				from = need
			}
			if err := e.aggregate(ctx, conn, t.s, from, to); err != nil {
				e.setRecErr(t.s.Name, err)
				continue
			}
			t.st.coveredFrom = from
			e.markDirty(recKey{t.s.Name, t.s.Hash()})
			if err := e.saveState(ctx, conn, t.s, t.st); err != nil {
				e.setRecErr(t.s.Name, err)
				continue
			}
			if from.After(need) {
				next = append(next, t)
			}
			if time.Now().After(deadline) {
				break
			}
		}
		back = next
	}
	return ctx.Err()
}

func (e *Engine) setRecErr(slo string, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err != nil {
		e.metrics.recordErrors.WithLabelValues(slo).Inc()
		if e.recErrs[slo] == nil {
			e.log.Error("SLO recording failed", "slo", slo, "err", err)
		}
		e.recErrs[slo] = err
		return
	}
	delete(e.recErrs, slo)
}

func (e *Engine) recErr(slo string) error {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.recErrs[slo]
}

// aggregate writes the per-minute counts of [from, to) (whole minutes)
// and the hours overlapping it.
func (e *Engine) aggregate(ctx context.Context, conn driver.Conn, s *Spec, from, to time.Time) error {
	version := uint64(time.Now().UnixNano())
	hash := s.Hash()
	q := fmt.Sprintf("INSERT INTO slo_minutes (slo, spec_hash, grp, minute, good, total, version) SELECT %s, toUInt64(%d), grp, m, good, total, toUInt64(%d) FROM (%s)",
		store.Quote(s.Name), hash, version, s.MinuteQuery(from, to))
	if err := conn.Exec(ctx, q); err != nil {
		return fmt.Errorf("SLO %q: record minutes %s–%s: %w", s.Name, from.Format(time.RFC3339), to.Format(time.RFC3339), err)
	}
	hf, ht := floorHour(from), ceilHour(to)
	q = fmt.Sprintf(`INSERT INTO slo_hours (slo, spec_hash, grp, hour, good, total, version)
SELECT slo, spec_hash, grp, toDateTime(intDiv(toUInt32(minute), 3600) * 3600) AS h, sum(good), sum(total), toUInt64(%d)
FROM slo_minutes FINAL
WHERE slo = %s AND spec_hash = %d AND minute >= toDateTime(%d) AND minute < toDateTime(%d)
GROUP BY slo, spec_hash, grp, h`, version, store.Quote(s.Name), hash, hf.Unix(), ht.Unix())
	if err := conn.Exec(ctx, q); err != nil {
		return fmt.Errorf("SLO %q: record hours: %w", s.Name, err)
	}
	return nil
}

func (e *Engine) saveState(ctx context.Context, conn driver.Conn, s *Spec, st *recState) error {
	q := fmt.Sprintf("INSERT INTO slo_recorder_state (slo, spec_hash, covered_from, recorded_to, version) SELECT %s, toUInt64(%d), toDateTime(%d), toDateTime(%d), toUInt64(%d)",
		store.Quote(s.Name), s.Hash(), st.coveredFrom.Unix(), st.recordedTo.Unix(), time.Now().UnixNano())
	if err := conn.Exec(ctx, q); err != nil {
		return fmt.Errorf("SLO %q: save recorder state: %w", s.Name, err)
	}
	return nil
}

type todo struct {
	s  *Spec
	st *recState
}

func (e *Engine) saveStates(ctx context.Context, conn driver.Conn, ts []todo) error {
	b, err := conn.PrepareBatch(ctx, "INSERT INTO slo_recorder_state (slo, spec_hash, covered_from, recorded_to, version)")
	if err != nil {
		return fmt.Errorf("save recorder state: %w", err)
	}
	v := uint64(time.Now().UnixNano())
	for _, t := range ts {
		if err := b.Append(t.s.Name, t.s.Hash(), t.st.coveredFrom, t.st.recordedTo, v); err != nil {
			_ = b.Abort()
			return fmt.Errorf("save recorder state: %w", err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("save recorder state: %w", err)
	}
	return nil
}

// coverage returns the recorder's covered_from of an SLO (zero if unknown).
func (e *Engine) coverage(s *Spec) time.Time {
	if st := e.rec[recKey{s.Name, s.Hash()}]; st != nil {
		return st.coveredFrom
	}
	return time.Time{}
}

// settle adds the minutes that left the late window (they will not change
// any more) to the meridian_slo_good_total and meridian_slo_total counters,
// which the exported Prometheus rules read. Counting starts when the engine
// starts.
func (e *Engine) settle(ctx context.Context, conn driver.Conn, s *Spec, st *recState) error {
	k := recKey{s.Name, s.Hash()}
	to := floorMinute(st.recordedTo.Add(-e.cfg.LateWindow))
	from, ok := e.settled[k]
	if !ok || from.Before(st.coveredFrom) {
		e.settled[k] = to
		return nil
	}
	if !to.After(from) {
		return nil
	}
	rows, err := conn.Query(ctx, fmt.Sprintf(`SELECT grp, sum(good), sum(total) FROM slo_minutes FINAL
WHERE slo = %s AND spec_hash = %d AND minute >= toDateTime(%d) AND minute < toDateTime(%d) GROUP BY grp`,
		store.Quote(s.Name), k.hash, from.Unix(), to.Unix()))
	if err != nil {
		return fmt.Errorf("SLO %q: settle: %w", s.Name, err)
	}
	defer rows.Close()
	for rows.Next() {
		var grp string
		var good, total uint64
		if err := rows.Scan(&grp, &good, &total); err != nil {
			return fmt.Errorf("SLO %q: settle: %w", s.Name, err)
		}
		e.metrics.goodTotal.WithLabelValues(s.Name, grp).Add(float64(good))
		e.metrics.eventsTotal.WithLabelValues(s.Name, grp).Add(float64(total))
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("SLO %q: settle: %w", s.Name, err)
	}
	e.settled[k] = to
	return nil
}

// cycleBatch collects the minute and hour rows of the warm SLOs of one
// cycle: two inserts per cycle, whatever the number of SLOs.
type cycleBatch struct {
	minutes, hours []countRow
}

type countRow struct {
	slo  string
	hash uint64
	grp  string
	t    time.Time
	c    Counts
}

func (b *cycleBatch) send(ctx context.Context, conn driver.Conn) error {
	v := uint64(time.Now().UnixNano())
	for _, part := range []struct {
		table, col string
		rows       []countRow
	}{{"slo_minutes", "minute", b.minutes}, {"slo_hours", "hour", b.hours}} {
		if len(part.rows) == 0 {
			continue
		}
		bt, err := conn.PrepareBatch(ctx, fmt.Sprintf("INSERT INTO %s (slo, spec_hash, grp, %s, good, total, version)", part.table, part.col))
		if err != nil {
			return err
		}
		for _, r := range part.rows {
			if err := bt.Append(r.slo, r.hash, r.grp, r.t, r.c.Good, r.c.Total, v); err != nil {
				_ = bt.Abort()
				return err
			}
		}
		if err := bt.Send(); err != nil {
			return err
		}
	}
	return nil
}

// warmJob is the forward pass of one SLO in steady state: [from, target)
// is aggregated from raw data into memory and the cycle's batch.
type warmJob struct {
	s    *Spec
	st   *recState
	m    *memSLO
	from time.Time
	rows []countRow
}

// warmQueryMax is how many SLOs one forward-pass query aggregates. Each
// SLO is a branch of a UNION ALL, so ClickHouse runs them in parallel and
// the cycle pays one round trip per group instead of one per SLO (100
// SLOs: 2.8 s one by one, 0.34 s grouped).
const warmQueryMax = 64

// warmQueryBytes bounds a grouped query's size below ClickHouse's
// max_query_size (256 KiB), whatever the length of explicit expressions.
const warmQueryBytes = 200_000

// aggregateWarmAll runs the forward pass of the steady-state SLOs, several
// per query, and returns the jobs that succeeded. When ClickHouse refuses
// a grouped query, its SLOs are retried one by one, so one SLO's bad
// expression fails only that SLO; any other failure fails the group.
func (e *Engine) aggregateWarmAll(ctx context.Context, conn driver.Conn, jobs []warmJob, to time.Time, b *cycleBatch) []warmJob {
	byTable := map[string][]int{}
	var tables []string
	for i, j := range jobs {
		t := j.s.Table()
		if byTable[t] == nil {
			tables = append(tables, t)
		}
		byTable[t] = append(byTable[t], i)
	}
	var ok []warmJob
	for _, t := range tables {
		idx := byTable[t]
		for len(idx) > 0 {
			// Up to warmQueryMax SLOs and warmQueryBytes of SQL per query.
			n, size := 0, 0
			for n < len(idx) && n < warmQueryMax {
				size += len(jobs[idx[n]].s.MinuteQuery(jobs[idx[n]].from, to)) + 64
				if n > 0 && size > warmQueryBytes {
					break
				}
				n++
			}
			group := idx[:n]
			idx = idx[n:]
			if len(group) > 1 {
				err := e.queryWarm(ctx, conn, jobs, group, to)
				if err == nil {
					for _, i := range group {
						e.finishWarm(&jobs[i], to, b)
						e.setRecErr(jobs[i].s.Name, nil)
						ok = append(ok, jobs[i])
					}
					continue
				}
				var ex *clickhouse.Exception
				if !errors.As(err, &ex) {
					// Not an SLO's fault (connection, timeout, shutdown):
					// one query per SLO would only fail the same way.
					for _, i := range group {
						e.setRecErr(jobs[i].s.Name, err)
					}
					continue
				}
				for _, i := range group {
					jobs[i].rows = nil
				}
			}
			for _, i := range group {
				err := e.queryWarm(ctx, conn, jobs, []int{i}, to)
				if err == nil {
					e.finishWarm(&jobs[i], to, b)
					ok = append(ok, jobs[i])
				}
				e.setRecErr(jobs[i].s.Name, err)
			}
		}
	}
	return ok
}

// queryWarm aggregates the jobs of group (one source table) in one query:
// a UNION ALL of their minute queries, each branch tagged with its job.
func (e *Engine) queryWarm(ctx context.Context, conn driver.Conn, jobs []warmJob, group []int, to time.Time) error {
	var q strings.Builder
	for n, i := range group {
		if n > 0 {
			q.WriteString("\nUNION ALL\n")
		}
		fmt.Fprintf(&q, "SELECT toUInt32(%d) AS job, grp, m, good, total FROM (%s)", i, jobs[i].s.MinuteQuery(jobs[i].from, to))
	}
	fail := func(err error) error {
		if len(group) == 1 {
			j := jobs[group[0]]
			return fmt.Errorf("SLO %q: record minutes %s–%s: %w", j.s.Name, j.from.Format(time.RFC3339), to.Format(time.RFC3339), err)
		}
		return fmt.Errorf("record minutes of %d SLOs: %w", len(group), err)
	}
	rows, err := conn.Query(ctx, q.String())
	if err != nil {
		return fail(err)
	}
	defer rows.Close()
	for rows.Next() {
		var job uint32
		var r countRow
		if err := rows.Scan(&job, &r.grp, &r.t, &r.c.Good, &r.c.Total); err != nil {
			return fail(err)
		}
		if !slices.Contains(group, int(job)) {
			return fail(fmt.Errorf("unexpected branch %d", job))
		}
		jobs[job].rows = append(jobs[job].rows, r)
	}
	if err := rows.Err(); err != nil {
		return fail(err)
	}
	return nil
}

// finishWarm puts a job's minutes into memory and the cycle's batch, then
// the hours touched from the minutes in memory (every minute of those
// hours is in memory: late_window ≤ MinuteSpan).
func (e *Engine) finishWarm(j *warmJob, to time.Time, b *cycleBatch) {
	s, m, from := j.s, j.m, j.from
	hash := s.Hash()
	for _, r := range j.rows {
		r.slo, r.hash, r.t = s.Name, hash, r.t.UTC()
		m.get(r.grp).minutes[r.t.Unix()] = r.c
		b.minutes = append(b.minutes, r)
	}
	j.rows = nil
	for h := floorHour(from); h.Before(to); h = h.Add(time.Hour) {
		for grp, sr := range m.series {
			var c Counts
			for t := h.Unix(); t < h.Unix()+3600; t += 60 {
				v := sr.minutes[t]
				c.Good += v.Good
				c.Total += v.Total
			}
			if c.Total == 0 && sr.hours[h.Unix()].Total == 0 {
				continue
			}
			sr.hours[h.Unix()] = c
			b.hours = append(b.hours, countRow{slo: s.Name, hash: hash, grp: grp, t: h, c: c})
		}
	}
}

// settleMem is settle for SLOs in memory.
func (e *Engine) settleMem(s *Spec, st *recState) {
	k := recKey{s.Name, s.Hash()}
	to := floorMinute(st.recordedTo.Add(-e.cfg.LateWindow))
	from, ok := e.settled[k]
	if !ok || from.Before(st.coveredFrom) || from.Before(to.Add(-MinuteSpan)) {
		e.settled[k] = to
		return
	}
	m := e.mem[k]
	for grp, sr := range m.series {
		var c Counts
		for t := from.Unix(); t < to.Unix(); t += 60 {
			v := sr.minutes[t]
			c.Good += v.Good
			c.Total += v.Total
		}
		if c.Total > 0 {
			e.metrics.goodTotal.WithLabelValues(s.Name, grp).Add(float64(c.Good))
			e.metrics.eventsTotal.WithLabelValues(s.Name, grp).Add(float64(c.Total))
		}
	}
	e.settled[k] = to
}
