package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/meridian-obs/meridian/pipeline/record"
	"github.com/meridian-obs/meridian/probes"
	"github.com/meridian-obs/meridian/probes/server"
)

type rows struct {
	mu sync.Mutex
	r  []record.ProbeResult
}

func (s *rows) Write(_ context.Context, r []record.ProbeResult) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.r = append(s.r, r...)
	return nil
}

func (s *rows) n() int { s.mu.Lock(); defer s.mu.Unlock(); return len(s.r) }

// The real binary: `run --config` registers, probes, delivers; SIGTERM
// stops it cleanly with everything measured delivered.
func TestRunBinary(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "meridian-agent")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	resp, err := probes.ListenResponder("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go resp.Serve(ctx)

	sink := &rows{}
	cfg := server.DefaultConfig()
	cfg.StateFile = filepath.Join(dir, "agents.json")
	cfg.Agents = []server.AgentConfig{{Name: "bin1", TokenHash: server.HashToken("file-token")}}
	cfg.Checks = []server.CheckConfig{{Name: "echo", Type: "udp", Target: resp.Addr().String(), Count: 3,
		Spacing: time.Millisecond, Timeout: 200 * time.Millisecond, Interval: time.Second, TargetRegion: "us-east"}}
	srv, err := server.New(cfg, server.Deps{Sink: sink})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start(ctx)
	ts := httptest.NewServer(srv.AgentHandler())
	defer ts.Close()

	os.WriteFile(filepath.Join(dir, "token"), []byte("file-token\n"), 0o600)
	conf := filepath.Join(dir, "agent.yaml")
	os.WriteFile(conf, []byte(fmt.Sprintf(`name: bin1
region: eu-west
site: par
server: %s
token_file: %s
spool_dir: %s
flush_interval: 200ms
retry_min: 50ms
retry_max: 200ms
metrics_listen: "127.0.0.1:0"
`, ts.URL, filepath.Join(dir, "token"), filepath.Join(dir, "spool"))), 0o600)

	if out, err := exec.Command(bin, "run", "--config", conf, "--check").CombinedOutput(); err != nil || !strings.Contains(string(out), "is valid") {
		t.Fatalf("--check: %v %s", err, out)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("name: x\nserver: nope\n"), 0o600)
	cmd := exec.Command(bin, "run", "--config", bad, "--check")
	out, err := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != 2 || !strings.Contains(string(out), "server") {
		t.Errorf("bad config: exit %d %v %s", code, err, out)
	}

	var stderr bytes.Buffer
	run := exec.Command(bin, "run", "--config", conf)
	run.Stderr = &stderr
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for sink.n() < 2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if sink.n() < 2 {
		run.Process.Kill()
		t.Fatalf("no results from the binary:\n%s", stderr.String())
	}
	run.Process.Signal(syscall.SIGTERM)
	if err := run.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, stderr.String())
	}
	if strings.Contains(stderr.String(), "file-token") {
		t.Errorf("the token appears in the log")
	}
	st := srv.Agents()[0]
	if !st.Registered || st.Region != "eu-west" || st.Results != uint64(sink.n()) || st.Stale {
		t.Errorf("agent status %+v, %d rows", st, sink.n())
	}
	for _, r := range sink.r {
		if r.Agent != "bin1" || r.SrcSite != "par" || r.TargetRegion != "us-east" || r.Received != 3 {
			t.Errorf("row %+v", r)
		}
	}
}
