package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestSLOCheckAndExport(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Main(context.Background(), []string{"slo", "check", "../../../slo/testdata/good.yaml", "../../../slo/testdata/openslo.yaml"}, &out, &errb); code != ExitOK {
		t.Fatalf("check good: %d %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "7 SLO(s)") {
		t.Errorf("stdout %q", out.String())
	}
	out.Reset()
	errb.Reset()
	if code := Main(context.Background(), []string{"slo", "check", "../../../slo/testdata/bad.yaml"}, &out, &errb); code != ExitConfig {
		t.Fatalf("check bad: exit %d", code)
	}
	if !strings.Contains(errb.String(), `SLO "broken"`) || !strings.Contains(errb.String(), "bad.yaml") {
		t.Errorf("stderr %q", errb.String())
	}
	out.Reset()
	if code := Main(context.Background(), []string{"slo", "export-rules", "../../../slo/testdata/good.yaml"}, &out, &errb); code != ExitOK {
		t.Fatalf("export: %d %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "alert: SLOErrorBudgetBurn") {
		t.Errorf("rules: %s", out.String())
	}
}
