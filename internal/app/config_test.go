package app

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meridian-obs/meridian/internal/config"
)

func TestGoodConfigs(t *testing.T) {
	t.Setenv("MERIDIAN_TEST_CH_PASSWORD", "from-env")
	files, _ := filepath.Glob("testdata/good/*.yaml")
	if len(files) == 0 {
		t.Fatal("no fixtures")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if _, err := LoadConfig(f); err != nil {
				t.Fatalf("%v", err)
			}
		})
	}
}

// Every bad fixture fails with a message naming the file, the key path and
// what was expected.
func TestBadConfigs(t *testing.T) {
	cases := map[string][]string{
		"unknown-key.yaml":         {"bad/unknown-key.yaml:2", "pipeline.flush_rowz", `unknown key "flush_rowz"`},
		"wrong-type.yaml":          {"bad/wrong-type.yaml:2", "pipeline.flush_interval", "expected a duration"},
		"negative.yaml":            {"bad/negative.yaml:2", "pipeline.flush_rows", "expected 1 to 1000000 rows", "got -5"},
		"addr.yaml":                {"bad/addr.yaml:2", "clickhouse.addr[0]", "expected host:port"},
		"missing-secret-file.yaml": {"clickhouse.password", "cannot read secret file /nonexistent/meridian-secret"},
		"missing-env.yaml":         {"clickhouse.password", "MERIDIAN_TEST_UNSET_VARIABLE_X is not set"},
		"syntax.yaml":              {"bad/syntax.yaml:", "did not find expected"},
		"retention.yaml":           {"clickhouse.retention.flows", "at least 24h"},
		"log-format.yaml":          {"log.format", "expected text or json"},
		"token-role.yaml":          {"http.tokens[0].role", "expected viewer, operator or admin"},
		"trusted-proxies.yaml":     {"http.trusted_proxies[1]", "expected an address or CIDR prefix", `"not-a-net"`},
	}
	files, _ := filepath.Glob("testdata/bad/*.yaml")
	if len(files) != len(cases) {
		t.Fatalf("%d bad fixtures, %d cases", len(files), len(cases))
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			_, err := LoadConfig(f)
			if err == nil {
				t.Fatal("no error")
			}
			for _, want := range cases[name] {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

// --dump shows where secrets come from, never their value.
func TestDumpRedactsSecrets(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "c.yaml")
	os.WriteFile(filepath.Join(dir, "pw"), []byte("hunter2-very-secret"), 0o600)
	os.WriteFile(f, []byte("clickhouse:\n  addr: [127.0.0.1:9000]\n  password: {value: inline-secret-xyz}\nhttp:\n  tokens:\n    - {name: a, role: admin, token_file: "+filepath.Join(dir, "pw")+"}\n"), 0o600)
	var out bytes.Buffer
	if err := Run(context.Background(), Options{ConfigPath: f, Dump: true, Stdout: &out}); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	if strings.Contains(s, "inline-secret-xyz") || strings.Contains(s, "hunter2") {
		t.Fatalf("dump leaks a secret:\n%s", s)
	}
	if !strings.Contains(s, config.Redacted) || !strings.Contains(s, "file: "+filepath.Join(dir, "pw")) {
		t.Errorf("dump should show the redaction and the secret's file:\n%s", s)
	}
}

func TestCheckReportsValid(t *testing.T) {
	var out bytes.Buffer
	if err := Run(context.Background(), Options{ConfigPath: "testdata/good/empty.yaml", Check: true, Stdout: &out}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "is valid") {
		t.Errorf("output %q", out.String())
	}
	err := Run(context.Background(), Options{ConfigPath: "testdata/bad/negative.yaml", Check: true, Stdout: &out})
	var ce *ConfigError
	if err == nil || !asConfigError(err, &ce) {
		t.Fatalf("want a ConfigError, got %v", err)
	}
}

func asConfigError(err error, target **ConfigError) bool {
	ce, ok := err.(*ConfigError)
	if ok {
		*target = ce
	}
	return ok
}

// FuzzLoadConfig: no input makes loading panic; an accepted input validates.
func FuzzLoadConfig(f *testing.F) {
	files, _ := filepath.Glob("testdata/*/*.yaml")
	for _, file := range files {
		b, _ := os.ReadFile(file)
		f.Add(b)
	}
	f.Add([]byte("pipeline: {flush_rows: 1e9}"))
	f.Add([]byte("clickhouse: {retention: {x: -1s}}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := DefaultConfig()
		if err := config.Decode("fuzz.yaml", data, &c); err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.yaml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		r := config.NewReporter()
		c.Validate(r)
		if err := r.Err(); err != nil {
			t.Fatalf("Decode accepted a configuration that does not validate: %v", err)
		}
	})
}
