package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunbookCheckAndPlan(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("tsig", "8hAVwosXJ3fNXps9yQUizocQT0UkvyP12a9lVpJ1vSc=")
	rb := write("rb.yaml", `runbooks:
  - name: edge-failover
    trigger: {match: 'slo=edge-latency, region=~".+"'}
    params: {region: '{{ .Labels.region }}', peer: '{{ healthyPeer }}'}
    steps:
      - dns: {server: primary, op: replace, name: 'edge-{{ .Params.region }}', type: A, copy_from: 'edge-{{ .Params.peer }}'}
`)
	bad := write("bad.yaml", "runbooks:\n  - name: x\n    trigger: {match: 'slo'}\n    steps: []\n")
	cfg := write("meridian.yaml", `runbooks:
  dns:
    servers:
      primary: {addr: 127.0.0.1:1, zone: example.test, tsig_name: k, tsig_secret_file: `+filepath.Join(dir, "tsig")+`}
`)
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := Main(context.Background(), args, &out, &errb)
		return code, out.String(), errb.String()
	}
	if code, out, errs := run("runbook", "check", "--config", cfg, rb); code != ExitOK || !strings.Contains(out, "1 runbook(s) in 1 file(s) are valid") {
		t.Errorf("check: %d %q %q", code, out, errs)
	}
	code, _, errs := run("runbook", "check", bad)
	if code != ExitConfig || !strings.Contains(errs, "bad.yaml:3: runbooks[0].trigger.match") || !strings.Contains(errs, "expected at least one step") {
		t.Errorf("check bad: %d %q", code, errs)
	}
	if code, _, errs := run("runbook", "check", rb); code != ExitOK {
		t.Errorf("structure-only check: %d %q", code, errs)
	}
	code, out, errs := run("runbook", "plan", "edge-failover", "--labels", "slo=edge-latency,region=eu", "--config", cfg, "--groups", "eu,us,ap", "--burning", "eu,ap", rb)
	if code != ExitOK || !strings.Contains(out, "replace edge-eu.example.test. A with the A records of edge-us.example.test.") {
		t.Errorf("plan: %d %q %q", code, out, errs)
	}
	code, _, errs = run("runbook", "plan", "edge-failover", "--labels", "slo=edge-latency,region=eu", "--config", cfg, "--groups", "eu,us", "--burning", "eu,us", rb)
	if code != ExitFail || !strings.Contains(errs, `no healthy region other than "eu"`) {
		t.Errorf("plan without a healthy peer: %d %q", code, errs)
	}
	if strings.Contains(out+errs, "8hAVwosXJ3fN") {
		t.Error("TSIG secret printed")
	}
}
