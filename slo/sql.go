package slo

import (
	"fmt"
	"strings"
	"time"

	"github.com/meridian-obs/meridian/pipeline/store"
)

// timeColumn is the event time of each source table.
var timeColumn = map[string]string{"probe_results": "time", "flows": "time_received", "firewall_events": "time"}

// minuteExpr truncates a DateTime to its UTC minute (toStartOfMinute
// follows the server's time zone, and some zones are not whole hours away
// from UTC).
func minuteExpr(col string) string {
	return fmt.Sprintf("toDateTime(intDiv(toUInt32(%s), 60) * 60)", col)
}

func quoteList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = store.Quote(x)
	}
	return strings.Join(q, ", ")
}

// MinuteQuery returns a SELECT of (grp String, m DateTime, good UInt64,
// total UInt64) for every group and minute of [from, to) with data.
func (s *Spec) MinuteQuery(from, to time.Time) string {
	table := s.Table()
	tcol := timeColumn[table]
	where := []string{
		fmt.Sprintf("%s >= toDateTime(%d)", tcol, from.Unix()),
		fmt.Sprintf("%s < toDateTime(%d)", tcol, to.Unix()),
	}
	grp := fmt.Sprintf("toString(%s)", s.GroupBy)
	var good, total string
	switch {
	case s.SLI.Probe != nil:
		p := s.SLI.Probe
		if len(p.Checks) > 0 {
			where = append(where, "check_name IN ("+quoteList(p.Checks)+")")
		}
		if len(p.ProbeTypes) > 0 {
			where = append(where, "probe_type IN ("+quoteList(p.ProbeTypes)+")")
		}
		if strings.TrimSpace(p.Where) != "" {
			where = append(where, "("+p.Where+")")
		}
		if s.Budgeting == Timeslices {
			return s.probeTimesliceQuery(grp, tcol, where)
		}
		answered := "length(rtts_us)"
		if p.LatencyBound > 0 {
			answered = fmt.Sprintf("arrayCount(x -> x <= %d, rtts_us)", p.LatencyBound.D().Microseconds())
		}
		// A packet is good only if it was sent: duplicates never make a
		// round better than all answered.
		good = fmt.Sprintf("sum(toUInt64(least(sent, %s)))", answered)
		total = "sum(toUInt64(sent))"
	case s.SLI.Ratio != nil:
		q := s.SLI.Ratio
		var v string
		switch q.Measure {
		case "bytes", "packets":
			v = q.Measure
			if table == "flows" {
				v = fmt.Sprintf("%s * greatest(sampling_rate, 1)", q.Measure)
			}
		}
		good, total = countExprs(q.Good, q.Total, v)
	case s.SLI.Expr != nil:
		good, total = countExprs(s.SLI.Expr.Good, s.SLI.Expr.Total, s.SLI.Expr.Value)
	}
	if s.Budgeting == Timeslices {
		// Distinct inner names: ClickHouse aliases are visible across the
		// whole SELECT, so "good >= … * total AS good" would read itself.
		inner := fmt.Sprintf("SELECT %s AS grp, %s AS m, %s AS i_good, %s AS i_total FROM %s WHERE %s GROUP BY grp, m",
			grp, minuteExpr(tcol), good, total, table, strings.Join(where, " AND "))
		return fmt.Sprintf("SELECT grp, m, toUInt64(i_good >= %v * i_total) AS good, toUInt64(1) AS total FROM (%s) WHERE i_total > 0",
			s.TimesliceTarget, inner)
	}
	return fmt.Sprintf("SELECT %s AS grp, %s AS m, %s AS good, %s AS total FROM %s WHERE %s GROUP BY grp, m",
		grp, minuteExpr(tcol), good, total, table, strings.Join(where, " AND "))
}

func countExprs(good, total, value string) (string, string) {
	if value == "" {
		return fmt.Sprintf("toUInt64(countIf((%s) AND (%s)))", good, total), fmt.Sprintf("toUInt64(countIf(%s))", total)
	}
	return fmt.Sprintf("toUInt64(sumIf(%s, (%s) AND (%s)))", value, good, total), fmt.Sprintf("toUInt64(sumIf(%s, %s))", value, total)
}

// probeTimesliceQuery: a minute is good when every configured bound is met
// by the minute's rounds: loss = 1 − Σreceived/Σsent, p95 of all answered
// packets' RTTs (exact), mean jitter and mean MOS of the rounds, and the
// share of packets answered within latency_bound ≥ timeslice_target (1 when
// unset).
func (s *Spec) probeTimesliceQuery(grp, tcol string, where []string) string {
	p := s.SLI.Probe
	var conds []string
	if p.MaxLoss != nil {
		conds = append(conds, fmt.Sprintf("(s_sent > 0 AND 1 - s_received / s_sent <= %v)", *p.MaxLoss))
	}
	if p.MaxP95RTT > 0 {
		conds = append(conds, fmt.Sprintf("(s_answered > 0 AND s_p95 <= %d)", p.MaxP95RTT.D().Microseconds()))
	}
	if p.MaxJitter > 0 {
		conds = append(conds, fmt.Sprintf("s_jitter <= %v", float64(p.MaxJitter.D())/float64(time.Millisecond)))
	}
	if p.MinMOS > 0 {
		conds = append(conds, fmt.Sprintf("s_mos >= %v", p.MinMOS))
	}
	if p.LatencyBound > 0 {
		t := s.TimesliceTarget
		if t == 0 {
			t = 1
		}
		conds = append(conds, fmt.Sprintf("(s_sent > 0 AND s_within >= %v * s_sent)", t))
	}
	inner := fmt.Sprintf(`SELECT %s AS grp, %s AS m,
	sum(toUInt64(sent)) AS s_sent, sum(toUInt64(least(received, sent))) AS s_received,
	sum(toUInt64(length(rtts_us))) AS s_answered,
	quantileExactArray(0.95)(rtts_us) AS s_p95,
	avg(jitter_ms) AS s_jitter, avg(mos) AS s_mos,
	sum(toUInt64(arrayCount(x -> x <= %d, rtts_us))) AS s_within
FROM probe_results WHERE %s GROUP BY grp, m`, grp, minuteExpr(tcol), p.LatencyBound.D().Microseconds(), strings.Join(where, " AND "))
	return fmt.Sprintf("SELECT grp, m, toUInt64(%s) AS good, toUInt64(1) AS total FROM (%s) WHERE s_sent > 0",
		strings.Join(conds, " AND "), inner)
}
