package slo

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/meridian-obs/meridian/internal/config"
)

// OpenSLO v1 documents (https://github.com/OpenSLO/OpenSLO, v1). Meridian
// imports kind SLO (with an inline indicator or an indicatorRef to a kind
// SLI document of the same file) whose metric sources have type "Meridian"
// (or "ClickHouse"). The metricSource spec keys:
//
//	ratioMetric good/bad/total: table (probe_results, flows, firewall_events),
//	  filter (ClickHouse boolean expression), measure (rows, bytes, packets),
//	  group_by.
//	thresholdMetric: source: probe, metric (rtt, rtt_p95, loss, jitter, mos),
//	  checks, probe_types, where, group_by. The objective's op and value give
//	  the bound (milliseconds for rtt, rtt_p95 and jitter).
type osloDoc struct {
	APIVersion string       `yaml:"apiVersion"`
	Kind       string       `yaml:"kind"`
	Metadata   osloMetadata `yaml:"metadata"`
	Spec       yaml.Node    `yaml:"spec"`
}

type osloMetadata struct {
	Name        string            `yaml:"name"`
	DisplayName string            `yaml:"displayName"`
	Labels      map[string]any    `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type osloSLOSpec struct {
	Description     string          `yaml:"description"`
	Service         string          `yaml:"service"`
	Indicator       *osloSLI        `yaml:"indicator"`
	IndicatorRef    string          `yaml:"indicatorRef"`
	TimeWindow      []osloWindow    `yaml:"timeWindow"`
	BudgetingMethod string          `yaml:"budgetingMethod"`
	Objectives      []osloObjective `yaml:"objectives"`
	AlertPolicies   []any           `yaml:"alertPolicies"`
}

type osloSLI struct {
	Metadata osloMetadata `yaml:"metadata"`
	Spec     osloSLISpec  `yaml:"spec"`
}

type osloSLISpec struct {
	Description     string           `yaml:"description"`
	RatioMetric     *osloRatio       `yaml:"ratioMetric"`
	ThresholdMetric *osloMetricInner `yaml:"thresholdMetric"`
}

type osloRatio struct {
	Counter bool             `yaml:"counter"`
	Good    *osloMetricInner `yaml:"good"`
	Bad     *osloMetricInner `yaml:"bad"`
	Total   *osloMetricInner `yaml:"total"`
	RawType string           `yaml:"rawType"`
	Raw     *osloMetricInner `yaml:"raw"`
}

type osloMetricInner struct {
	MetricSource struct {
		Type      string            `yaml:"type"`
		MetricRef string            `yaml:"metricSourceRef"`
		Spec      map[string]any    `yaml:"spec"`
		Extra     map[string]string `yaml:",inline"`
	} `yaml:"metricSource"`
}

type osloWindow struct {
	Duration  string `yaml:"duration"`
	IsRolling bool   `yaml:"isRolling"`
	Calendar  *struct {
		StartTime string `yaml:"startTime"`
		TimeZone  string `yaml:"timeZone"`
	} `yaml:"calendar"`
}

type osloObjective struct {
	DisplayName     string   `yaml:"displayName"`
	Op              string   `yaml:"op"`
	Value           *float64 `yaml:"value"`
	Target          float64  `yaml:"target"`
	TargetPercent   float64  `yaml:"targetPercent"`
	TimeSliceTarget float64  `yaml:"timeSliceTarget"`
	TimeSliceWindow string   `yaml:"timeSliceWindow"`
}

func parseOpenSLO(name string, data []byte) ([]*Spec, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []osloDoc
	for {
		var d osloDoc
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, &config.Error{File: name, Msg: "invalid YAML: " + err.Error()}
		}
		docs = append(docs, d)
	}
	slis := map[string]*osloSLI{}
	for _, d := range docs {
		if d.Kind == "SLI" {
			var s osloSLISpec
			if err := d.Spec.Decode(&s); err != nil {
				return nil, &config.Error{File: name, Path: "SLI " + d.Metadata.Name, Msg: err.Error()}
			}
			slis[d.Metadata.Name] = &osloSLI{Metadata: d.Metadata, Spec: s}
		}
	}
	var out []*Spec
	var errs config.Errors
	fail := func(slo, field, format string, args ...any) {
		errs = append(errs, &config.Error{File: name, Path: field, Msg: fmt.Sprintf("SLO %q: ", slo) + fmt.Sprintf(format, args...)})
	}
	n := 0
	for di, d := range docs {
		if d.Kind == "SLI" || d.Kind == "DataSource" || d.Kind == "Service" || d.Kind == "AlertPolicy" || d.Kind == "AlertCondition" || d.Kind == "AlertNotificationTarget" {
			continue // accepted, not used by Meridian
		}
		if d.APIVersion != "openslo/v1" {
			fail(d.Metadata.Name, fmt.Sprintf("document[%d].apiVersion", di), "expected openslo/v1, got %q", d.APIVersion)
			continue
		}
		if d.Kind != "SLO" {
			fail(d.Metadata.Name, fmt.Sprintf("document[%d].kind", di), "expected SLO, SLI, Service, DataSource or AlertPolicy, got %q", d.Kind)
			continue
		}
		n++
		var ss osloSLOSpec
		if err := d.Spec.Decode(&ss); err != nil {
			fail(d.Metadata.Name, "spec", "%v", err)
			continue
		}
		specs, ferrs := convertOpenSLO(d.Metadata, ss, slis)
		for _, e := range ferrs {
			fail(d.Metadata.Name, e.Path, "%s", e.Msg)
		}
		if len(ferrs) > 0 {
			continue
		}
		for _, s := range specs {
			s.File = name
			s.ApplyDefaults()
			r := config.NewReporter()
			s.Validate(r)
			if err := r.Err(); err != nil {
				for _, e := range err.(config.Errors) {
					fail(s.Name, e.Path, "%s", e.Msg)
				}
				continue
			}
			out = append(out, s)
		}
	}
	if n == 0 && len(errs) == 0 {
		errs = append(errs, &config.Error{File: name, Msg: "no OpenSLO document of kind SLO"})
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
}

func convertOpenSLO(md osloMetadata, ss osloSLOSpec, slis map[string]*osloSLI) ([]*Spec, []*config.Error) {
	var errs []*config.Error
	bad := func(path, format string, args ...any) {
		errs = append(errs, &config.Error{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	base := Spec{Name: md.Name, Description: ss.Description, Labels: map[string]string{}}
	for k, v := range md.Labels {
		base.Labels[k] = fmt.Sprint(v)
	}
	if len(base.Labels) == 0 {
		base.Labels = nil
	}
	if ss.Service != "" && labelRe.MatchString("service") {
		if base.Labels == nil {
			base.Labels = map[string]string{}
		}
		base.Labels["service"] = ss.Service
	}
	switch strings.ToLower(ss.BudgetingMethod) {
	case "occurrences", "":
		base.Budgeting = Occurrences
	case "timeslices":
		base.Budgeting = Timeslices
	default:
		bad("spec.budgetingMethod", "expected Occurrences or Timeslices, got %q", ss.BudgetingMethod)
	}
	if len(ss.TimeWindow) != 1 {
		bad("spec.timeWindow", "expected exactly one time window, got %d", len(ss.TimeWindow))
	} else {
		w := ss.TimeWindow[0]
		switch {
		case w.IsRolling:
			d, err := ParseDuration(w.Duration)
			if err != nil {
				bad("spec.timeWindow[0].duration", "%v", err)
			}
			base.Window = Duration(d)
		case w.Duration == "1M" || strings.EqualFold(w.Duration, "1month"):
			base.Calendar = "month"
		case w.Duration == "1w" || w.Duration == "7d":
			base.Calendar = "week"
		default:
			bad("spec.timeWindow[0].duration", "calendar windows must be 1M (month) or 1w (week), got %q", w.Duration)
		}
		if !w.IsRolling && w.Calendar != nil && w.Calendar.TimeZone != "" && w.Calendar.TimeZone != "UTC" && w.Calendar.TimeZone != "Etc/UTC" {
			bad("spec.timeWindow[0].calendar.timeZone", "only UTC calendars are supported, got %q", w.Calendar.TimeZone)
		}
	}
	ind := ss.Indicator
	if ind == nil && ss.IndicatorRef != "" {
		ind = slis[ss.IndicatorRef]
		if ind == nil {
			bad("spec.indicatorRef", "no SLI document named %q in the file", ss.IndicatorRef)
		}
	}
	if ind == nil {
		if ss.IndicatorRef == "" {
			bad("spec.indicator", "expected an indicator or an indicatorRef")
		}
		return nil, errs
	}
	if len(ss.Objectives) == 0 {
		bad("spec.objectives", "expected at least one objective")
	}
	if len(errs) > 0 {
		return nil, errs
	}
	var out []*Spec
	for i, o := range ss.Objectives {
		op := fmt.Sprintf("spec.objectives[%d]", i)
		s := base
		if len(ss.Objectives) > 1 {
			suffix := strings.ToLower(strings.ReplaceAll(o.DisplayName, " ", "-"))
			if suffix == "" {
				suffix = fmt.Sprint(i + 1)
			}
			s.Name = base.Name + "-" + suffix
		}
		s.Objective = o.Target
		if s.Objective == 0 && o.TargetPercent != 0 {
			s.Objective = o.TargetPercent / 100
		}
		if s.Budgeting == Timeslices {
			if o.TimeSliceWindow != "" {
				d, err := ParseDuration(o.TimeSliceWindow)
				if err != nil || d != time.Minute {
					bad(op+".timeSliceWindow", "Meridian's timeslices are one minute: expected 1m, got %q", o.TimeSliceWindow)
					continue
				}
			}
			s.TimesliceTarget = o.TimeSliceTarget
		}
		sli, gb, err := convertIndicator(ind, o, s.Budgeting, op)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s.SLI = sli
		s.GroupBy = gb
		if s.SLI.Probe != nil && s.Budgeting == Timeslices {
			s.TimesliceTarget = 0
		}
		sp := s
		out = append(out, &sp)
	}
	return out, errs
}

func sourceSpec(m *osloMetricInner, path string) (map[string]any, *config.Error) {
	if m == nil {
		return nil, &config.Error{Path: path, Msg: "missing metric"}
	}
	t := strings.ToLower(m.MetricSource.Type)
	if t != "meridian" && t != "clickhouse" {
		return nil, &config.Error{Path: path + ".metricSource.type", Msg: fmt.Sprintf("expected Meridian or ClickHouse, got %q", m.MetricSource.Type)}
	}
	return m.MetricSource.Spec, nil
}

func str(m map[string]any, k string) string {
	if v, ok := m[k]; ok && v != nil {
		return fmt.Sprint(v)
	}
	return ""
}

func strs(m map[string]any, k string) []string {
	v, ok := m[k].([]any)
	if !ok {
		if s := str(m, k); s != "" {
			return []string{s}
		}
		return nil
	}
	out := make([]string, len(v))
	for i, x := range v {
		out[i] = fmt.Sprint(x)
	}
	return out
}

func convertIndicator(ind *osloSLI, o osloObjective, budgeting, op string) (SLI, string, *config.Error) {
	sp := ind.Spec
	switch {
	case sp.RatioMetric != nil:
		rm := sp.RatioMetric
		tot, err := sourceSpec(rm.Total, "spec.indicator.spec.ratioMetric.total")
		if err != nil {
			return SLI{}, "", err
		}
		table := str(tot, "table")
		var good string
		switch {
		case rm.Good != nil:
			g, err := sourceSpec(rm.Good, "spec.indicator.spec.ratioMetric.good")
			if err != nil {
				return SLI{}, "", err
			}
			if t := str(g, "table"); t != "" && t != table {
				return SLI{}, "", &config.Error{Path: "spec.indicator.spec.ratioMetric.good.metricSource.spec.table", Msg: "good and total must count the same table"}
			}
			good = str(g, "filter")
		case rm.Bad != nil:
			b, err := sourceSpec(rm.Bad, "spec.indicator.spec.ratioMetric.bad")
			if err != nil {
				return SLI{}, "", err
			}
			if f := str(b, "filter"); f != "" {
				good = "NOT (" + f + ")"
			}
		default:
			return SLI{}, "", &config.Error{Path: "spec.indicator.spec.ratioMetric", Msg: "expected good or bad"}
		}
		total := str(tot, "filter")
		if total == "" {
			total = "1"
		}
		if good == "" {
			return SLI{}, "", &config.Error{Path: "spec.indicator.spec.ratioMetric.good.metricSource.spec.filter", Msg: "expected a ClickHouse boolean expression"}
		}
		if good != "1" && total != "1" {
			good = "(" + good + ") AND (" + total + ")"
		}
		gb := str(tot, "group_by")
		measure := str(tot, "measure")
		if table == "flows" || table == "firewall_events" {
			return SLI{Ratio: &RatioSLI{Table: table, Good: good, Total: total, Measure: measure}}, gb, nil
		}
		e := &ExprSLI{Table: table, Good: good, Total: total}
		if measure != "" && measure != "rows" {
			e.Value = measure
		}
		return SLI{Expr: e}, gb, nil
	case sp.ThresholdMetric != nil:
		m, err := sourceSpec(sp.ThresholdMetric, "spec.indicator.spec.thresholdMetric")
		if err != nil {
			return SLI{}, "", err
		}
		if s := str(m, "source"); s != "probe" {
			return SLI{}, "", &config.Error{Path: "spec.indicator.spec.thresholdMetric.metricSource.spec.source", Msg: fmt.Sprintf("expected probe, got %q", s)}
		}
		if o.Value == nil {
			return SLI{}, "", &config.Error{Path: op + ".value", Msg: "a threshold metric needs the objective's op and value"}
		}
		v := *o.Value
		p := &ProbeSLI{Checks: strs(m, "checks"), ProbeTypes: strs(m, "probe_types"), Where: str(m, "where")}
		metric := str(m, "metric")
		upper := o.Op == "lt" || o.Op == "lte"
		if !upper && o.Op != "gt" && o.Op != "gte" {
			return SLI{}, "", &config.Error{Path: op + ".op", Msg: fmt.Sprintf("expected lt, lte, gt or gte, got %q", o.Op)}
		}
		ms := Duration(time.Duration(v * float64(time.Millisecond)))
		wantUpper := func() *config.Error {
			if !upper {
				return &config.Error{Path: op + ".op", Msg: fmt.Sprintf("metric %s needs lt or lte, got %q", metric, o.Op)}
			}
			return nil
		}
		switch metric {
		case "rtt":
			if budgeting != Occurrences {
				p.MaxP95RTT = ms
			} else {
				p.LatencyBound = ms
			}
		case "rtt_p95":
			p.MaxP95RTT = ms
		case "loss":
			p.MaxLoss = &v
		case "jitter":
			p.MaxJitter = ms
		case "mos":
			if upper {
				return SLI{}, "", &config.Error{Path: op + ".op", Msg: "metric mos needs gt or gte"}
			}
			p.MinMOS = v
		default:
			return SLI{}, "", &config.Error{Path: "spec.indicator.spec.thresholdMetric.metricSource.spec.metric", Msg: fmt.Sprintf("expected rtt, rtt_p95, loss, jitter or mos, got %q", metric)}
		}
		if metric != "mos" {
			if e := wantUpper(); e != nil {
				return SLI{}, "", e
			}
		}
		if metric != "rtt" && budgeting == Occurrences {
			return SLI{}, "", &config.Error{Path: "spec.budgetingMethod", Msg: fmt.Sprintf("metric %s is per round: use budgetingMethod Timeslices (or metric rtt for per-packet occurrences)", metric)}
		}
		return SLI{Probe: p}, str(m, "group_by"), nil
	}
	return SLI{}, "", &config.Error{Path: "spec.indicator.spec", Msg: "expected ratioMetric or thresholdMetric"}
}
