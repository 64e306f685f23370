package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os/exec"
	"strings"
	"testing"

	"github.com/meridian-obs/meridian/probes"
	"github.com/meridian-obs/meridian/probes/agent"
)

// The agent runs on vantage points: it must not carry the ClickHouse driver.
func TestNoClickHouseDriver(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "github.com/meridian-obs/meridian/probes/agent") {
		t.Fatalf("go list output does not look like the agent's dependencies:\n%s", out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "github.com/ClickHouse") {
			t.Errorf("meridian-agent links %s", line)
		}
	}
}

func TestProbeJSONKeys(t *testing.T) {
	resp, err := probes.ListenResponder("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go resp.Serve(ctx)
	var out, errb bytes.Buffer
	code := agent.Main(ctx, []string{"probe", "--type", "udp", "--count", "5", "--interval", "2ms", "--timeout", "500ms", "--json", resp.Addr().String()}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var m map[string]any
	if err := json.Unmarshal(out.Bytes(), &m); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	for _, k := range []string{"sent", "received", "loss_ratio", "rtt_min_ms", "rtt_avg_ms", "rtt_max_ms", "rtt_p50_ms",
		"rtt_p95_ms", "rtt_p99_ms", "rtt_stddev_ms", "jitter_ms", "mos"} {
		if _, ok := m[k]; !ok {
			t.Errorf("missing key %q in %s", k, out.String())
		}
	}
	if m["sent"].(float64) != 5 || m["received"].(float64) != 5 {
		t.Errorf("sent/received: %s", out.String())
	}
	// Human summary; a dead target exits 1 with a reason.
	out.Reset()
	l, _ := net.ListenPacket("udp", "127.0.0.1:0")
	dead := l.LocalAddr().String()
	l.Close()
	code = agent.Main(ctx, []string{"probe", dead, "--type", "udp", "--count", "2", "--timeout", "100ms"}, &out, &errb)
	if code != 1 || !strings.Contains(out.String(), "100.0% loss") || !strings.Contains(out.String(), "error: ") {
		t.Errorf("dead target: exit %d\n%s", code, out.String())
	}
	if code := agent.Main(ctx, []string{"probe", "--type", "smtp", "x"}, &out, &errb); code != 2 {
		t.Errorf("unknown type: exit %d", code)
	}
}
