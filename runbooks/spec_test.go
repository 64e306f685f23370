package runbooks

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseMatchers(t *testing.T) {
	ms, err := ParseMatchers(`slo=edge-latency, severity="page", region=~".+", env!="dev", team!~"net.*"`)
	must(t, err)
	var got []string
	for _, m := range ms {
		got = append(got, m.String())
	}
	want := []string{`slo="edge-latency"`, `severity="page"`, `region=~".+"`, `env!="dev"`, `team!~"net.*"`}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	cases := []struct {
		labels map[string]string
		want   bool
	}{
		{map[string]string{"slo": "edge-latency", "severity": "page", "region": "eu"}, true},
		{map[string]string{"slo": "edge-latency", "severity": "page", "region": ""}, false},
		{map[string]string{"slo": "edge-latency", "severity": "page", "region": "eu", "env": "dev"}, false},
		{map[string]string{"slo": "edge-latency", "severity": "page", "region": "eu", "team": "netops"}, false},
		{map[string]string{"slo": "edge-latency-2", "severity": "page", "region": "eu"}, false},
	}
	for i, c := range cases {
		if got := ms.Matches(c.labels); got != c.want {
			t.Errorf("case %d: %v, want %v", i, got, c.want)
		}
	}
	// Regexps are anchored, as in Prometheus.
	ms, _ = ParseMatchers(`{region=~"eu"}`)
	if ms.Matches(map[string]string{"region": "eu-west"}) {
		t.Error("regexp not anchored")
	}
	for _, bad := range []string{"", "slo", "slo==x", `slo="x`, "1a=b", `a=~"("`, "a=b c=d"} {
		if _, err := ParseMatchers(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestSpecErrors(t *testing.T) {
	cases := map[string]struct{ yaml, want string }{
		"unknown key":    {"runbooks:\n  - name: a\n    trigers: {}\n", `test.yaml:3: runbooks[0].trigers: unknown key "trigers"`},
		"no steps":       {"runbooks:\n  - name: a\n    trigger: {match: 'a=b'}\n", `runbooks[0].steps: runbook "a": expected at least one step`},
		"bad matcher":    {"runbooks:\n  - name: a\n    trigger: {match: 'a'}\n    steps: [{webhook: {endpoint: ops}}]\n", `runbooks[0].trigger.match: runbook "a": expected name=value`},
		"two actions":    {"runbooks:\n  - name: a\n    trigger: {match: 'a=b'}\n    steps: [{webhook: {endpoint: ops}, bgp: {op: withdraw, prefix: 192.0.2.0/24}}]\n", `runbooks[0].steps[0]: runbook "a": expected exactly one action`},
		"unknown server": {"runbooks:\n  - name: a\n    trigger: {match: 'a=b'}\n    steps: [{dns: {server: x, op: set_ttl, name: www, type: A, ttl: 5}}]\n", `runbooks[0].steps[0].dns.server: runbook "a": no DNS server "x"`},
		"replace both":   {"runbooks:\n  - name: a\n    trigger: {match: 'a=b'}\n    steps: [{dns: {server: p, op: replace, name: www, type: A, values: [127.0.0.1], copy_from: x}}]\n", `replace needs exactly one of values or copy_from`},
		"bad template":   {"runbooks:\n  - name: a\n    trigger: {match: 'a=b'}\n    params: {r: '{{ .Labels.region'}\n    steps: [{webhook: {endpoint: ops}}]\n", `runbooks[0].params.r: runbook "a": invalid template`},
		"dup name":       {"runbooks:\n  - name: a\n    trigger: {match: 'a=b'}\n    steps: [{webhook: {endpoint: ops}}]\n  - name: a\n    trigger: {match: 'a=b'}\n    steps: [{webhook: {endpoint: ops}}]\n", `runbooks[1].name: runbook "a" is defined twice`},
		"bad undo":       {"runbooks:\n  - name: a\n    trigger: {match: 'a=b'}\n    steps: [{webhook: {endpoint: ops}, undo: maybe}]\n", `runbooks[0].steps[0].undo: runbook "a": expected auto or none`},
		"bad duration":   {"runbooks:\n  - name: a\n    cooldown: soon\n", `runbooks[0].cooldown: got str "soon", expected a duration`},
	}
	env := DefaultConfig()
	env.DNS.Servers = map[string]DNSServer{"p": {Zone: "example.test"}}
	env.Webhook.Endpoints = map[string]WebhookEndpoint{"ops": {}}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Parse("test.yaml", []byte(c.yaml), &env)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error = %v\nwant it to contain %q", err, c.want)
			}
		})
	}
}

func TestLoadFilesAllOrNothing(t *testing.T) {
	dir := t.TempDir()
	good := "runbooks:\n  - name: a\n    trigger: {match: 'a=b'}\n    steps: [{webhook: {endpoint: ops}}]\n"
	must(t, os.WriteFile(filepath.Join(dir, "1.yaml"), []byte(good), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "2.yaml"), []byte(good), 0o644))
	_, err := LoadFiles(nil, filepath.Join(dir, "*.yaml"))
	if err == nil || !strings.Contains(err.Error(), `runbook "a" is also defined in`) {
		t.Errorf("error = %v", err)
	}
	_, err = LoadFiles(nil, filepath.Join(dir, "missing.yaml"))
	if err == nil || !strings.Contains(err.Error(), "cannot read runbook file") {
		t.Errorf("error = %v", err)
	}
}

func TestQualifyAndPrefixes(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"www", "www.example.test."}, {"edge-eu.example.test.", "edge-eu.example.test."}, {"@", "example.test."}, {"A.B", "a.b.example.test."},
	} {
		got, err := qualify(c.in, "example.test")
		if err != nil || got != c.want {
			t.Errorf("qualify(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"evil.org.", "example.test.evil.org.", "a b", "x..y", "", "a;b", "notexample.test."} {
		if got, err := qualify(bad, "example.test"); err == nil {
			t.Errorf("qualify(%q) = %q, want an error", bad, got)
		}
	}
	b := BGPConfig{AllowedPrefixes: []string{"203.0.113.0/24", "2001:db8::/32"}}
	for _, ok := range []string{"203.0.113.0/24", "203.0.113.128/25", "2001:db8:1::/48"} {
		if _, err := b.allowedPrefix(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"203.0.112.0/23", "198.51.100.0/24", "0.0.0.0/0", "203.0.113.1/24", "2001:db9::/32", "x"} {
		if _, err := b.allowedPrefix(bad); err == nil {
			t.Errorf("%s allowed", bad)
		}
	}
}

func TestBGPLabelInjectionRefused(t *testing.T) {
	cfg := DefaultConfig()
	cfg.BGP = BGPConfig{ASN: 65001, RouterID: "127.0.0.1", ListenPort: -1, NextHop: "198.18.0.1",
		AllowedPrefixes: []string{"203.0.113.0/24"}, Peers: []BGPPeer{{Address: "127.0.0.2", ASN: 65002}}}
	yaml := `
runbooks:
  - name: wd
    trigger: {match: 'slo=edge-latency'}
    params: {p: '{{ .Labels.prefix }}'}
    param_patterns: {p: '.*'}
    steps:
      - bgp: {op: withdraw, prefix: '{{ .Params.p }}'}
`
	for _, p := range []string{"0.0.0.0/0", "198.51.100.0/24", "203.0.0.0/16"} {
		rbs, err := Parse("t.yaml", []byte(yaml), &cfg)
		must(t, err)
		prov, err := newProviders(&cfg, discardLog())
		must(t, err)
		_, err = rbs[0].plan(t.Context(), map[string]string{"slo": "edge-latency", "prefix": p}, nil, prov, "x")
		if err == nil || !strings.Contains(err.Error(), "outside the allowed prefixes") {
			t.Errorf("prefix %s: %v", p, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(hookYAML("")))
	f.Add([]byte(strings.Replace(dnsRunbook, "%s", "", 1)))
	f.Add([]byte("runbooks: [{name: a}]"))
	env := DefaultConfig()
	env.DNS.Servers = map[string]DNSServer{"primary": {Zone: "example.test"}}
	env.Webhook.Endpoints = map[string]WebhookEndpoint{"ops": {}}
	f.Fuzz(func(t *testing.T, data []byte) {
		timer := time.AfterFunc(5*time.Second, func() { panic(fmt.Sprintf("Parse hangs on %q", data)) })
		defer timer.Stop()
		rbs, err := Parse("fuzz.yaml", data, &env)
		if err != nil {
			return
		}
		for _, rb := range rbs {
			_ = rb.Matches(map[string]string{"slo": "x"})
		}
	})
}

func FuzzParseMatchers(f *testing.F) {
	for _, s := range []string{`slo=edge-latency, severity="page", region=~".+"`, `{a!~"b"}`, `a="\""`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ms, err := ParseMatchers(s)
		if err != nil {
			return
		}
		// What parsed re-parses to the same matchers.
		var parts []string
		for _, m := range ms {
			parts = append(parts, m.String())
		}
		again, err := ParseMatchers(strings.Join(parts, ","))
		if err != nil || len(again) != len(ms) {
			t.Fatalf("%q → %q: %v", s, parts, err)
		}
		for i := range ms {
			if again[i].String() != ms[i].String() {
				t.Fatalf("%q: %s → %s", s, ms[i], again[i])
			}
		}
	})
}
