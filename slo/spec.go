// Package slo holds Meridian's SLO engine: SLO specifications (Meridian's
// own YAML and OpenSLO v1), their compilation into ClickHouse counts, the
// incremental per-minute recorder, the evaluator of error budgets and
// multi-window burn rates, Prometheus rule export and the SLO API.
package slo

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/meridian-obs/meridian/internal/config"
)

// Budgeting methods.
const (
	Occurrences = "occurrences"
	Timeslices  = "timeslices"
)

// File is an SLO file in Meridian's own format.
type File struct {
	SLOs []Spec `yaml:"slos"`
}

// Spec is one SLO.
type Spec struct {
	Name        string `yaml:"name" json:"name"`
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
	// Objective is the target ratio of good events (or good timeslices),
	// 0 < objective < 1, e.g. 0.999.
	Objective float64 `yaml:"objective" json:"objective"`
	// Window is the rolling window (e.g. 30d). Calendar windows set Calendar
	// instead ("month" or "week", UTC).
	Window   Duration `yaml:"window,omitempty" json:"window,omitempty"`
	Calendar string   `yaml:"calendar,omitempty" json:"calendar,omitempty"`
	// Budgeting is occurrences (default) or timeslices (one-minute slices).
	Budgeting string `yaml:"budgeting,omitempty" json:"budgeting,omitempty"`
	// TimesliceTarget is, for ratio SLIs under timeslices budgeting, the
	// ratio of good events a minute needs to be a good minute.
	TimesliceTarget float64 `yaml:"timeslice_target,omitempty" json:"timeslice_target,omitempty"`
	// GroupBy is the column the SLO is computed per value of. Default
	// target_region for probes, region for firewall_events, exporter_region
	// for flows.
	GroupBy string `yaml:"group_by,omitempty" json:"group_by,omitempty"`
	// GroupLabel is the alert and metric label carrying the group value
	// (default "region" for *region columns, else the column name).
	GroupLabel string            `yaml:"group_label,omitempty" json:"group_label,omitempty"`
	SLI        SLI               `yaml:"sli" json:"sli"`
	Alerting   AlertPolicy       `yaml:"alerting,omitempty" json:"alerting"`
	Labels     map[string]string `yaml:"labels,omitempty" json:"labels,omitempty"`
	// Prometheus names the counters the exported Prometheus rules read
	// (default: Meridian's own meridian_slo_good_total and
	// meridian_slo_total for this SLO).
	Prometheus *PromSource `yaml:"prometheus,omitempty" json:"prometheus,omitempty"`

	// File is where the SLO was loaded from (not part of the YAML).
	File string `yaml:"-" json:"file,omitempty"`

	defaultRules bool // the policy is the default one
}

// SLI says how good and total events are counted. Exactly one of Probe,
// Ratio and Expr is set.
type SLI struct {
	Probe *ProbeSLI `yaml:"probe,omitempty" json:"probe,omitempty"`
	Ratio *RatioSLI `yaml:"ratio,omitempty" json:"ratio,omitempty"`
	Expr  *ExprSLI  `yaml:"expr,omitempty" json:"expr,omitempty"`
}

// ProbeSLI counts probe packets of probe_results. Under occurrences an event
// is a packet sent, good when answered within LatencyBound (any answer when
// unset). Under timeslices a minute is good when every bound set is met:
// loss ratio, p95 of the answered packets' RTT, mean jitter, mean MOS.
type ProbeSLI struct {
	// Checks and ProbeTypes restrict the rounds counted (empty: all).
	Checks     []string `yaml:"checks,omitempty" json:"checks,omitempty"`
	ProbeTypes []string `yaml:"probe_types,omitempty" json:"probe_types,omitempty"`
	// Where is an extra ClickHouse boolean expression over probe_results.
	Where        string   `yaml:"where,omitempty" json:"where,omitempty"`
	LatencyBound Duration `yaml:"latency_bound,omitempty" json:"latency_bound,omitempty"`

	MaxLoss   *float64 `yaml:"max_loss,omitempty" json:"max_loss,omitempty"`
	MaxP95RTT Duration `yaml:"max_p95_rtt,omitempty" json:"max_p95_rtt,omitempty"`
	MaxJitter Duration `yaml:"max_jitter,omitempty" json:"max_jitter,omitempty"`
	MinMOS    float64  `yaml:"min_mos,omitempty" json:"min_mos,omitempty"`
}

// RatioSLI is the ratio of rows (or bytes, packets) of flows or
// firewall_events matching Good to those matching Total.
type RatioSLI struct {
	Table string `yaml:"table" json:"table"`
	Good  string `yaml:"good" json:"good"`
	Total string `yaml:"total,omitempty" json:"total,omitempty"` // default: every row
	// Measure is rows (default), bytes or packets.
	Measure string `yaml:"measure,omitempty" json:"measure,omitempty"`
}

// ExprSLI gives explicit ClickHouse expressions: Good and Total are boolean
// expressions counted as rows (or, when Value is set, summing Value).
type ExprSLI struct {
	Table string `yaml:"table" json:"table"`
	Good  string `yaml:"good" json:"good"`
	Total string `yaml:"total" json:"total"`
	Value string `yaml:"value,omitempty" json:"value,omitempty"`
}

// PromSource: PromQL counter selectors of good and total events, and the
// label of those series holding the group.
type PromSource struct {
	Good       string `yaml:"good" json:"good"`
	Total      string `yaml:"total" json:"total"`
	GroupLabel string `yaml:"group_label,omitempty" json:"group_label,omitempty"`
}

// AlertPolicy configures the burn-rate alerts of an SLO.
type AlertPolicy struct {
	// Disabled turns the SLO's alerts off (figures are still computed).
	Disabled bool `yaml:"disabled,omitempty" json:"disabled,omitempty"`
	// Rules default to the SRE Workbook's multi-window multi-burn-rate policy.
	Rules        []BurnRule `yaml:"rules,omitempty" json:"rules"`
	RunbookURL   string     `yaml:"runbook_url,omitempty" json:"runbook_url,omitempty"`
	DashboardURL string     `yaml:"dashboard_url,omitempty" json:"dashboard_url,omitempty"`
}

// BurnRule fires when the burn rate over both windows is at least Factor.
type BurnRule struct {
	Severity    string   `yaml:"severity" json:"severity"`
	LongWindow  Duration `yaml:"long_window" json:"long_window"`
	ShortWindow Duration `yaml:"short_window" json:"short_window"`
	Factor      float64  `yaml:"factor" json:"factor"`
}

// Name identifies the rule: "page-1h-5m".
func (r BurnRule) Name() string {
	return r.Severity + "-" + FormatDuration(r.LongWindow.D()) + "-" + FormatDuration(r.ShortWindow.D())
}

// DefaultRules is the SRE Workbook policy (chapter 5, "multiwindow,
// multi-burn-rate alerts").
func DefaultRules() []BurnRule {
	return []BurnRule{
		{Severity: "page", LongWindow: Duration(time.Hour), ShortWindow: Duration(5 * time.Minute), Factor: 14.4},
		{Severity: "page", LongWindow: Duration(6 * time.Hour), ShortWindow: Duration(30 * time.Minute), Factor: 6},
		{Severity: "ticket", LongWindow: Duration(24 * time.Hour), ShortWindow: Duration(2 * time.Hour), Factor: 3},
		{Severity: "ticket", LongWindow: Duration(72 * time.Hour), ShortWindow: Duration(6 * time.Hour), Factor: 1},
	}
}

// Tables and the columns an SLO may be grouped by.
var groupColumns = map[string][]string{
	"probe_results":   {"target_region", "src_region", "src_site", "target_site", "target", "check_name", "agent", "probe_type"},
	"flows":           {"exporter_region", "exporter_site", "src_region", "dst_region", "src_site", "dst_site", "src_role", "dst_role", "flow_type", "action", "in_if_name", "out_if_name"},
	"firewall_events": {"region", "site", "device", "vendor", "action", "rule", "format"},
}

var defaultGroup = map[string]string{"probe_results": "target_region", "flows": "exporter_region", "firewall_events": "region"}

// Table is the source table of the SLI.
func (s *Spec) Table() string {
	switch {
	case s.SLI.Probe != nil:
		return "probe_results"
	case s.SLI.Ratio != nil:
		return s.SLI.Ratio.Table
	case s.SLI.Expr != nil:
		return s.SLI.Expr.Table
	}
	return ""
}

// WindowLength is the rolling window, or the longest calendar period.
func (s *Spec) WindowLength() time.Duration {
	switch s.Calendar {
	case "month":
		return 31 * 24 * time.Hour
	case "week":
		return 7 * 24 * time.Hour
	}
	return s.Window.D()
}

// WindowStart is the start of the SLO window ending at end (exclusive).
func (s *Spec) WindowStart(end time.Time) time.Time {
	end = end.UTC()
	switch s.Calendar {
	case "month":
		// The calendar period holding the last instant of the window.
		last := end.Add(-time.Nanosecond)
		return time.Date(last.Year(), last.Month(), 1, 0, 0, 0, 0, time.UTC)
	case "week":
		last := end.Add(-time.Nanosecond)
		d := time.Date(last.Year(), last.Month(), last.Day(), 0, 0, 0, 0, time.UTC)
		wd := (int(d.Weekday()) + 6) % 7 // Monday first (ISO 8601)
		return d.AddDate(0, 0, -wd)
	}
	return end.Add(-s.Window.D())
}

// WindowName is "30d" or "calendar-month".
func (s *Spec) WindowName() string {
	if s.Calendar != "" {
		return "calendar-" + s.Calendar
	}
	return FormatDuration(s.Window.D())
}

// Hash identifies what the SLO counts: a change of any field that changes
// the per-minute counts gives a new hash (and a back-fill). Objective,
// window and alerting do not change the counts and are left out.
func (s *Spec) Hash() uint64 {
	key := struct {
		SLI       SLI
		Budgeting string
		TS        float64
		GroupBy   string
	}{s.SLI, s.Budgeting, s.TimesliceTarget, s.GroupBy}
	b, _ := json.Marshal(key)
	sum := sha256.Sum256(b)
	return binary.BigEndian.Uint64(sum[:8])
}

// ApplyDefaults fills unset fields.
func (s *Spec) ApplyDefaults() {
	if s.Budgeting == "" {
		s.Budgeting = Occurrences
	}
	s.Budgeting = strings.ToLower(s.Budgeting)
	if s.GroupBy == "" {
		s.GroupBy = defaultGroup[s.Table()]
	}
	if s.GroupLabel == "" {
		if strings.HasSuffix(s.GroupBy, "region") {
			s.GroupLabel = "region"
		} else {
			s.GroupLabel = s.GroupBy
		}
	}
	if len(s.Alerting.Rules) == 0 {
		s.Alerting.Rules = DefaultRules()
		s.defaultRules = true
	}
	if s.SLI.Ratio != nil && s.SLI.Ratio.Measure == "" {
		s.SLI.Ratio.Measure = "rows"
	}
	if s.SLI.Ratio != nil && s.SLI.Ratio.Total == "" {
		s.SLI.Ratio.Total = "1"
	}
}

var (
	nameRe  = regexp.MustCompile(`^[a-z0-9]([a-z0-9_.-]{0,126}[a-z0-9])?$`)
	labelRe = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

// Validate reports every problem of the SLO (after ApplyDefaults) with keys
// relative to the SLO.
func (s *Spec) Validate(r *config.Reporter) {
	if !nameRe.MatchString(s.Name) {
		r.Errorf("name", "expected lower-case letters, digits, '-', '_' or '.' (at most 128), got %q", s.Name)
	}
	if !(s.Objective > 0 && s.Objective < 1) {
		r.Errorf("objective", "expected a ratio strictly between 0 and 1 (e.g. 0.999), got %v", s.Objective)
	}
	switch {
	case s.Calendar != "" && s.Window != 0:
		r.Errorf("window", "set either window (rolling) or calendar, not both")
	case s.Calendar != "":
		if s.Calendar != "month" && s.Calendar != "week" {
			r.Errorf("calendar", "expected month or week, got %q", s.Calendar)
		}
	case s.Window.D() < time.Hour || s.Window.D() > 90*24*time.Hour:
		r.Errorf("window", "expected a rolling window between 1h and 90d (e.g. 28d, 30d), got %s", FormatDuration(s.Window.D()))
	case s.Window.D()%time.Minute != 0:
		r.Errorf("window", "expected whole minutes, got %s", s.Window.D())
	}
	switch s.Budgeting {
	case Occurrences:
		if s.TimesliceTarget != 0 {
			r.Errorf("timeslice_target", "only with budgeting: timeslices")
		}
	case Timeslices:
		if s.SLI.Probe == nil && !(s.TimesliceTarget > 0 && s.TimesliceTarget <= 1) {
			r.Errorf("timeslice_target", "expected a ratio in (0, 1] for a ratio SLI under timeslices, got %v", s.TimesliceTarget)
		}
	default:
		r.Errorf("budgeting", "expected occurrences or timeslices, got %q", s.Budgeting)
	}
	n := 0
	for _, set := range []bool{s.SLI.Probe != nil, s.SLI.Ratio != nil, s.SLI.Expr != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		r.Errorf("sli", "expected exactly one of probe, ratio or expr, got %d", n)
		return
	}
	table := s.Table()
	if cols, ok := groupColumns[table]; ok && !contains(cols, s.GroupBy) {
		r.Errorf("group_by", "expected one of %s for table %s, got %q", strings.Join(cols, ", "), table, s.GroupBy)
	}
	if !labelRe.MatchString(s.GroupLabel) || s.GroupLabel == "alertname" || s.GroupLabel == "slo" || s.GroupLabel == "severity" {
		r.Errorf("group_label", "expected a Prometheus label name other than alertname, slo and severity, got %q", s.GroupLabel)
	}
	switch {
	case s.SLI.Probe != nil:
		p, pr := s.SLI.Probe, r.Sub("sli.probe")
		checkExpr(pr, "where", p.Where, true)
		if p.LatencyBound < 0 || p.LatencyBound.D() > time.Hour {
			pr.Errorf("latency_bound", "expected a duration between 0 and 1h, got %s", p.LatencyBound.D())
		}
		if s.Budgeting == Timeslices {
			if p.MaxLoss == nil && p.MaxP95RTT == 0 && p.MaxJitter == 0 && p.MinMOS == 0 && p.LatencyBound == 0 {
				pr.Errorf("", "timeslices need at least one bound: max_loss, max_p95_rtt, max_jitter, min_mos or latency_bound")
			}
			if p.MaxLoss != nil && (*p.MaxLoss < 0 || *p.MaxLoss > 1) {
				pr.Errorf("max_loss", "expected a ratio in [0, 1], got %v", *p.MaxLoss)
			}
			if p.MinMOS < 0 || p.MinMOS > 5 {
				pr.Errorf("min_mos", "expected a MOS in [1, 5], got %v", p.MinMOS)
			}
			if p.MaxP95RTT < 0 || p.MaxJitter < 0 {
				pr.Errorf("", "durations must be positive")
			}
		} else if p.MaxLoss != nil || p.MaxP95RTT != 0 || p.MaxJitter != 0 || p.MinMOS != 0 {
			pr.Errorf("", "max_loss, max_p95_rtt, max_jitter and min_mos are timeslice bounds: set budgeting: timeslices")
		}
		for i, c := range p.Checks {
			if c == "" {
				pr.Errorf(fmt.Sprintf("checks[%d]", i), "empty check name")
			}
		}
	case s.SLI.Ratio != nil:
		q, qr := s.SLI.Ratio, r.Sub("sli.ratio")
		if q.Table != "flows" && q.Table != "firewall_events" {
			qr.Errorf("table", "expected flows or firewall_events, got %q", q.Table)
		}
		checkExpr(qr, "good", q.Good, false)
		checkExpr(qr, "total", q.Total, false)
		if q.Measure != "rows" && q.Measure != "bytes" && q.Measure != "packets" {
			qr.Errorf("measure", "expected rows, bytes or packets, got %q", q.Measure)
		}
	case s.SLI.Expr != nil:
		e, er := s.SLI.Expr, r.Sub("sli.expr")
		if _, ok := groupColumns[e.Table]; !ok {
			er.Errorf("table", "expected probe_results, flows or firewall_events, got %q", e.Table)
		}
		checkExpr(er, "good", e.Good, false)
		checkExpr(er, "total", e.Total, false)
		checkExpr(er, "value", e.Value, true)
	}
	if len(s.Alerting.Rules) > 8 {
		r.Errorf("alerting.rules", "at most 8 rules, got %d", len(s.Alerting.Rules))
	}
	for i, rule := range s.Alerting.Rules {
		rr := r.Index("alerting.rules", i)
		if rule.Severity != "page" && rule.Severity != "ticket" {
			rr.Errorf("severity", "expected page or ticket, got %q", rule.Severity)
		}
		if rule.ShortWindow.D() < time.Minute || rule.ShortWindow >= rule.LongWindow {
			rr.Errorf("short_window", "expected at least 1m and shorter than long_window (%s), got %s",
				FormatDuration(rule.LongWindow.D()), FormatDuration(rule.ShortWindow.D()))
		}
		if rule.LongWindow.D() > 7*24*time.Hour || rule.LongWindow.D()%time.Minute != 0 || rule.ShortWindow.D()%time.Minute != 0 {
			rr.Errorf("long_window", "expected whole minutes up to 7d, got %s", FormatDuration(rule.LongWindow.D()))
		}
		if !(rule.Factor > 0) {
			rr.Errorf("factor", "expected a burn rate factor > 0, got %v", rule.Factor)
		} else if !s.defaultRules && s.Objective > 0 && s.Objective < 1 && rule.Factor*(1-s.Objective) > 1 {
			rr.Errorf("factor", "factor %v can never be reached with objective %v (burn rate is at most %.4g)", rule.Factor, s.Objective, 1/(1-s.Objective))
		}
	}
	for k := range s.Labels {
		if !labelRe.MatchString(k) || k == "alertname" || k == "slo" || k == "severity" || k == s.GroupLabel {
			r.Errorf("labels."+k, "expected a Prometheus label name not used by Meridian")
		}
	}
}

// Forbidden in expressions: they would let an expression escape the query
// it is placed in.
var exprForbidden = []string{";", "--", "/*", "*/", "`"}

func checkExpr(r *config.Reporter, key, e string, optional bool) {
	if strings.TrimSpace(e) == "" {
		if !optional {
			r.Errorf(key, "expected a ClickHouse boolean expression, got nothing")
		}
		return
	}
	for _, f := range exprForbidden {
		if strings.Contains(e, f) {
			r.Errorf(key, "expression must not contain %q", f)
			return
		}
	}
	depth := 0
	inStr := false
	for i := 0; i < len(e); i++ {
		c := e[i]
		switch {
		case inStr && c == '\\':
			i++
		case c == '\'':
			inStr = !inStr
		case !inStr && c == '(':
			depth++
		case !inStr && c == ')':
			depth--
			if depth < 0 {
				r.Errorf(key, "unbalanced parentheses in %q", e)
				return
			}
		}
	}
	if depth != 0 || inStr {
		r.Errorf(key, "unbalanced parentheses or quotes in %q", e)
		return
	}
	up := strings.ToUpper(e)
	for _, kw := range []string{"SELECT ", "UNION ", " FORMAT ", "SETTINGS "} {
		if strings.Contains(up, kw) {
			r.Errorf(key, "expression must not contain %s", strings.TrimSpace(kw))
			return
		}
	}
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// sortSpecs orders SLOs by name.
func sortSpecs(s []*Spec) {
	sort.Slice(s, func(i, j int) bool { return s[i].Name < s[j].Name })
}
