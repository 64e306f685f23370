package web

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Query parameters shared by the data endpoints:
//
//	range=1h|6h|24h|7d|30d (any Go duration, or N followed by d), default 6h,
//	ending now; or from= and to= (RFC 3339 or Unix seconds);
//	step= a duration (default: about 120 points over the range);
//	filters: region, site, target, src_region, dst_region, device, …
type query struct {
	From, To time.Time
	Step     time.Duration
	Filters  map[string]string
	Values   url.Values
}

const maxRange = 400 * 24 * time.Hour

// parseDuration accepts Go durations and days ("7d").
func parseDuration(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("expected a duration like 6h or 7d, got %q", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("expected a duration like 6h or 7d, got %q", s)
	}
	return v, nil
}

func parseTime(s string) (time.Time, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("expected RFC 3339 or Unix seconds, got %q", s)
	}
	return t.UTC(), nil
}

// validFilter bounds filter values: printable, short.
func validFilter(v string) bool {
	if len(v) > 256 {
		return false
	}
	for _, r := range v {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// parseQuery reads the common parameters; allowed lists the filter names of
// the endpoint, extra the other parameters it reads itself. Any other
// parameter is an error.
func parseQuery(v url.Values, now time.Time, allowed []string, extra ...string) (query, error) {
	q := query{Filters: map[string]string{}, Values: v}
	known := map[string]bool{"range": true, "from": true, "to": true, "step": true, "refresh": true}
	for _, a := range allowed {
		known[a] = true
	}
	for _, a := range extra {
		known[a] = true
	}
	for k, vals := range v {
		if !known[k] {
			return q, fmt.Errorf("unknown parameter %q", k)
		}
		if len(vals) > 1 {
			return q, fmt.Errorf("parameter %q given %d times", k, len(vals))
		}
	}
	for _, a := range allowed {
		if x := v.Get(a); x != "" {
			if !validFilter(x) {
				return q, fmt.Errorf("%s: expected printable text of at most 256 bytes", a)
			}
			q.Filters[a] = x
		}
	}
	now = now.UTC().Truncate(time.Second)
	switch {
	case v.Get("from") != "" || v.Get("to") != "":
		if v.Get("range") != "" {
			return q, fmt.Errorf("give range, or from and to, not both")
		}
		if v.Get("from") == "" {
			return q, fmt.Errorf("from: required with to")
		}
		var err error
		if q.From, err = parseTime(v.Get("from")); err != nil {
			return q, fmt.Errorf("from: %v", err)
		}
		q.To = now
		if v.Get("to") != "" {
			if q.To, err = parseTime(v.Get("to")); err != nil {
				return q, fmt.Errorf("to: %v", err)
			}
		}
	default:
		r := 6 * time.Hour
		if s := v.Get("range"); s != "" {
			var err error
			if r, err = parseDuration(s); err != nil {
				return q, fmt.Errorf("range: %v", err)
			}
		}
		q.To, q.From = now, now.Add(-r)
	}
	if !q.From.Before(q.To) {
		return q, fmt.Errorf("from must be before to")
	}
	if q.To.Sub(q.From) > maxRange {
		return q, fmt.Errorf("time range longer than %s", maxRange)
	}
	if s := v.Get("step"); s != "" {
		d, err := parseDuration(s)
		if err != nil {
			return q, fmt.Errorf("step: %v", err)
		}
		if d < time.Minute {
			return q, fmt.Errorf("step: expected at least 1m, got %s", s)
		}
		if q.To.Sub(q.From)/d > 2000 {
			return q, fmt.Errorf("step: %s gives more than 2000 points over the range", s)
		}
		q.Step = d
	} else {
		q.Step = autoStep(q.To.Sub(q.From))
	}
	return q, nil
}

var steps = []time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour,
	3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour}

// autoStep picks the smallest step giving at most ~150 points.
func autoStep(r time.Duration) time.Duration {
	for _, s := range steps {
		if r/s <= 150 {
			return s
		}
	}
	return 24 * time.Hour
}

// limitParam reads limit= (default def, 1..max).
func limitParam(v url.Values, def, max int) (int, error) {
	s := v.Get("limit")
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > max {
		return 0, fmt.Errorf("limit: expected 1 to %d, got %q", max, s)
	}
	return n, nil
}

// where builds "AND col = ?" clauses for the filters present, in a fixed
// order, with their arguments.
func where(q query, cols [][2]string) (string, []any) {
	var b strings.Builder
	var args []any
	for _, c := range cols {
		if v, ok := q.Filters[c[0]]; ok {
			b.WriteString(" AND ")
			b.WriteString(c[1])
			b.WriteString(" = ?")
			args = append(args, v)
		}
	}
	return b.String(), args
}
