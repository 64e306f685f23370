package main

import (
	"strings"
	"testing"
)

const stream = `{"Action":"start","Package":"example/a"}
{"Action":"run","Package":"example/a","Test":"TestOK"}
{"Action":"output","Package":"example/a","Test":"TestOK","Output":"=== RUN   TestOK\n"}
{"Action":"pass","Package":"example/a","Test":"TestOK","Elapsed":0.1}
{"Action":"run","Package":"example/a","Test":"TestCH"}
{"Action":"output","Package":"example/a","Test":"TestCH","Output":"    ch_test.go:12: skipped (set CI=true to make this a failure): clickhouse-server not found\n"}
{"Action":"output","Package":"example/a","Test":"TestCH","Output":"--- SKIP: TestCH (0.00s)\n"}
{"Action":"skip","Package":"example/a","Test":"TestCH","Elapsed":0}
{"Action":"run","Package":"example/a","Test":"TestShort"}
{"Action":"output","Package":"example/a","Test":"TestShort","Output":"    x_test.go:3: needs -short=false\n"}
{"Action":"skip","Package":"example/a","Test":"TestShort","Elapsed":0}
{"Action":"pass","Package":"example/a","Elapsed":0.2}
{"Action":"run","Package":"example/b","Test":"TestBad"}
{"Action":"output","Package":"example/b","Test":"TestBad","Output":"    b_test.go:9: got 3, want 4\n"}
{"Action":"fail","Package":"example/b","Test":"TestBad","Elapsed":0.01}
{"Action":"fail","Package":"example/b","Elapsed":0.3}
`

func TestSummaryListsPeerSkipsLoudlyAndFails(t *testing.T) {
	var out strings.Builder
	rc := run(strings.NewReader(stream), &out)
	got := out.String()
	if rc != 1 {
		t.Errorf("exit code %d with a failing test; want 1", rc)
	}
	for _, want := range []string{
		"ok  \texample/a\t0.2s",
		"b_test.go:9: got 3, want 4",
		"FAIL\texample/b\t0.3s",
		"1 TEST(S) SKIPPED BECAUSE A REAL PEER IS MISSING",
		"example/a TestCH: skipped (set CI=true to make this a failure): clickhouse-server not found",
		"1 other skipped test(s):",
		"example/a TestShort: needs -short=false",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("summary lacks %q; got:\n%s", want, got)
		}
	}
	if strings.Contains(got, "=== RUN   TestOK") {
		t.Errorf("summary repeats the output of a passing test:\n%s", got)
	}
}

func TestSummaryAllGreen(t *testing.T) {
	in := `{"Action":"pass","Package":"example/a","Test":"TestOK"}
{"Action":"pass","Package":"example/a","Elapsed":1}
`
	var out strings.Builder
	if rc := run(strings.NewReader(in), &out); rc != 0 {
		t.Fatalf("exit code %d on a green run; want 0:\n%s", rc, out.String())
	}
	if !strings.Contains(out.String(), "no test was skipped") {
		t.Errorf("summary does not say nothing was skipped:\n%s", out.String())
	}
}

func TestSummaryBuildFailure(t *testing.T) {
	in := `{"ImportPath":"example/c","Action":"build-output","Output":"c.go:1: syntax error\n"}
{"ImportPath":"example/c","Action":"build-fail"}
`
	var out strings.Builder
	if rc := run(strings.NewReader(in), &out); rc != 1 {
		t.Fatalf("exit code %d on a build failure; want 1", rc)
	}
	if !strings.Contains(out.String(), "c.go:1: syntax error") {
		t.Errorf("build error not shown:\n%s", out.String())
	}
}
