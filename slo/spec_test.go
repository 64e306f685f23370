package slo

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meridian-obs/meridian/internal/testutil/chtest"
)

func TestLoadGoodFiles(t *testing.T) {
	specs, err := LoadFiles([]string{"testdata/good.yaml", "testdata/openslo.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*Spec{}
	for _, s := range specs {
		byName[s.Name] = s
	}
	if len(specs) != 7 {
		t.Fatalf("got %d SLOs", len(specs))
	}
	e := byName["edge-latency"]
	if e.GroupBy != "target_region" || e.GroupLabel != "region" || e.SLI.Probe.LatencyBound.D() != 150*time.Millisecond || len(e.Alerting.Rules) != 4 {
		t.Errorf("edge-latency defaults: %+v", e)
	}
	q := byName["edge-quality"]
	if q.Calendar != "month" || q.Budgeting != Timeslices || q.WindowName() != "calendar-month" {
		t.Errorf("edge-quality: %+v", q)
	}
	fw := byName["fw-availability"]
	if fw == nil || fw.SLI.Ratio == nil || fw.SLI.Ratio.Table != "firewall_events" || fw.GroupBy != "site" || fw.Window.D() != 28*24*time.Hour || fw.Labels["team"] != "security" {
		t.Errorf("OpenSLO ratio import: %+v", fw)
	}
	pl := byName["probe-latency"]
	if pl == nil || pl.Calendar != "month" || pl.SLI.Probe.LatencyBound.D() != 120*time.Millisecond || pl.Objective != 0.995 {
		t.Errorf("OpenSLO threshold import: %+v", pl)
	}
	loss := byName["probe-loss"]
	if loss == nil || loss.Budgeting != Timeslices || loss.SLI.Probe.MaxLoss == nil || *loss.SLI.Probe.MaxLoss != 0.02 {
		t.Errorf("OpenSLO timeslices import: %+v", loss)
	}
	if h1, h2 := e.Hash(), byName["edge-quality"].Hash(); h1 == h2 {
		t.Error("different SLIs, same hash")
	}
}

func TestInvalidFileRejectedOthersLoad(t *testing.T) {
	specs, err := LoadFiles([]string{"testdata/bad.yaml", "testdata/good.yaml"})
	if err == nil {
		t.Fatal("bad file accepted")
	}
	msg := err.Error()
	for _, want := range []string{"testdata/bad.yaml", `SLO "broken"`, "slos[1].objective", "slos[1].group_by"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not name %q", msg, want)
		}
	}
	if len(specs) != 4 {
		t.Errorf("the good file's SLOs: got %d, want 4", len(specs))
	}
	for _, s := range specs {
		if s.Name == "fine" {
			t.Error("an SLO of the rejected file was loaded")
		}
	}
}

func TestValidationMessages(t *testing.T) {
	cases := []struct{ name, yaml, want string }{
		{"unknown key", "slos: [{name: a, objective: 0.9, window: 1d, sli: {probe: {}}, objetive: 1}]", "unknown key"},
		{"two SLIs", "slos: [{name: a, objective: 0.9, window: 1d, sli: {probe: {}, expr: {table: flows, good: '1', total: '1'}}}]", "sli: SLO \"a\": expected exactly one"},
		{"injection", "slos: [{name: a, objective: 0.9, window: 1d, sli: {ratio: {table: flows, good: \"1; DROP TABLE flows\"}}}]", "sli.ratio.good"},
		{"subquery", "slos: [{name: a, objective: 0.9, window: 1d, sli: {expr: {table: flows, good: \"dst_port IN (SELECT 1)\", total: '1'}}}]", "SELECT"},
		{"window", "slos: [{name: a, objective: 0.9, window: 5m, sli: {probe: {}}}]", "window"},
		{"factor", "slos: [{name: a, objective: 0.9, window: 1d, sli: {probe: {}}, alerting: {rules: [{severity: page, long_window: 1h, short_window: 5m, factor: 20}]}}]", "can never be reached"},
		{"short>long", "slos: [{name: a, objective: 0.9, window: 1d, sli: {probe: {}}, alerting: {rules: [{severity: page, long_window: 5m, short_window: 1h, factor: 2}]}}]", "short_window"},
		{"timeslice bound in occurrences", "slos: [{name: a, objective: 0.9, window: 1d, sli: {probe: {max_loss: 0.1}}}]", "timeslices"},
		{"duplicate", "slos: [{name: a, objective: 0.9, window: 1d, sli: {probe: {}}}, {name: a, objective: 0.9, window: 1d, sli: {probe: {}}}]", "already used"},
		{"openslo bad source", "apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: x}\nspec:\n  indicator: {metadata: {name: i}, spec: {thresholdMetric: {metricSource: {type: Prometheus, spec: {}}}}}\n  timeWindow: [{duration: 7d, isRolling: true}]\n  objectives: [{op: lte, value: 1, target: 0.9}]\n", `SLO "x"`},
		{"openslo timeslice window", "apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: x}\nspec:\n  budgetingMethod: Timeslices\n  indicator: {metadata: {name: i}, spec: {thresholdMetric: {metricSource: {type: Meridian, spec: {source: probe, metric: loss}}}}}\n  timeWindow: [{duration: 7d, isRolling: true}]\n  objectives: [{op: lte, value: 0.1, target: 0.9, timeSliceWindow: 5m}]\n", "timeSliceWindow"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("f.yaml", []byte(c.yaml))
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "f.yaml") {
				t.Errorf("error %q: want it to name f.yaml and %q", err, c.want)
			}
		})
	}
}

func TestCheckFiles(t *testing.T) {
	if err := CheckFiles([]string{"testdata/good.yaml", "testdata/openslo.yaml"}); err != nil {
		t.Error(err)
	}
	if err := CheckFiles([]string{"testdata/good.yaml", "testdata/bad.yaml"}); err == nil {
		t.Error("bad file passed")
	}
	if err := CheckFiles([]string{"testdata/missing.yaml"}); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("missing file: %v", err)
	}
}

func TestExportRulesPassPromtool(t *testing.T) {
	specs, err := LoadFiles([]string{"testdata/good.yaml", "testdata/openslo.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	out, err := ExportRules(specs)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"record: slo:sli_error:ratio_rate5m", "alert: SLOErrorBudgetBurn", `meridian_slo_good_total{slo="edge-latency"}`, "severity: page", "> 0.0144"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("rules lack %q", want)
		}
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		chtest.Unavailable(t, "promtool not installed (apt-get install prometheus)")
	}
	f := filepath.Join(t.TempDir(), "rules.yml")
	if err := os.WriteFile(f, out, 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := exec.Command(promtool, "check", "rules", f).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s\n%s", err, res, out)
	}
	if !strings.Contains(string(res), "SUCCESS") {
		t.Errorf("promtool: %s", res)
	}
}

func FuzzParse(f *testing.F) {
	for _, p := range []string{"testdata/good.yaml", "testdata/openslo.yaml", "testdata/bad.yaml"} {
		b, _ := os.ReadFile(p)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		specs, err := Parse("fuzz.yaml", data)
		if err == nil {
			for _, s := range specs {
				_ = s.MinuteQuery(time.Unix(0, 0), time.Unix(60, 0))
			}
		}
	})
}
