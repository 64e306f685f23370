package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meridian-obs/meridian/internal/testutil/chtest"
	"github.com/meridian-obs/meridian/pipeline/store"
)

func TestMain(m *testing.M) { chtest.Main(m) }

// buildMeridian compiles this command into a temporary directory.
func buildMeridian(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "meridian")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Rows accepted before SIGTERM are all in ClickHouse after the process
// exits: the queues are flushed on the way out. The flush interval is an hour
// and the flush size larger than the rows sent, so nothing is written before
// the signal.
func TestSIGTERMFlushesAcceptedRows(t *testing.T) {
	scfg := chtest.Config(t)
	bin := buildMeridian(t)
	dir := t.TempDir()
	listen := freeAddr(t)
	token := "test-ingest-token-0123456789"
	cfgPath := filepath.Join(dir, "meridian.yaml")
	os.WriteFile(filepath.Join(dir, "token"), []byte(token), 0o600)
	cfg := fmt.Sprintf(`state_dir: %s
http:
  listen: %s
  tokens:
    - {name: ingest, role: admin, token_file: %s}
clickhouse:
  addr: [%s]
  database: %s
pipeline:
  flush_rows: 200000
  queue_rows: 400000
  flush_interval: 1h
`, filepath.Join(dir, "state"), listen, filepath.Join(dir, "token"), scfg.Addr[0], scfg.Database)
	os.WriteFile(cfgPath, []byte(cfg), 0o600)

	cmd := exec.Command(bin, "serve", "--config", cfgPath)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	base := "http://" + listen
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not ready:\n%s", logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}

	const n = 25_000
	var body bytes.Buffer
	now := time.Now().UTC().Format(time.RFC3339)
	for i := 0; i < n; i++ {
		fmt.Fprintf(&body, `{"time_received":%q,"flow_type":"ipfix","src_addr":"10.0.%d.%d","dst_addr":"2001:db8::%x","bytes":%d,"packets":1}`+"\n",
			now, i>>8&255, i&255, i, i)
	}
	body.WriteString("this line is not JSON\n")
	req, _ := http.NewRequest("POST", base+"/api/v1/ingest/flows", &body)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Accepted, Rejected int
		Errors             []struct{ Line int }
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err := json.Unmarshal(b, &res); err != nil || res.Accepted != n || res.Rejected != 1 || res.Errors[0].Line != n+1 {
		t.Fatalf("ingest: %d %s (%v)", resp.StatusCode, b, err)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, logs.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("no exit 60 s after SIGTERM:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "stopped cleanly") {
		t.Errorf("log lacks the clean stop:\n%s", logs.String())
	}

	ctx := context.Background()
	conn, err := store.Open(ctx, scfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var count, sum uint64
	if err := conn.QueryRow(ctx, "SELECT count(), sum(bytes) FROM flows").Scan(&count, &sum); err != nil {
		t.Fatal(err)
	}
	if count != n || sum != uint64(n)*(n-1)/2 {
		t.Fatalf("after SIGTERM: %d rows (sum %d) in ClickHouse, want %d (sum %d)", count, sum, n, uint64(n)*(n-1)/2)
	}
}

// A configuration error exits with code 2 and a message naming the key.
func TestConfigErrorExitCode(t *testing.T) {
	bin := buildMeridian(t)
	f := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(f, []byte("pipeline:\n  flush_rows: nope\n"), 0o600)
	for _, args := range [][]string{{"check", f}, {"serve", "--config", f}, {"serve", "--check", "--config", f}} {
		out, err := exec.Command(bin, args...).CombinedOutput()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 2 {
			t.Errorf("%v: exit %v, want 2\n%s", args, err, out)
		}
		if !strings.Contains(string(out), "pipeline.flush_rows") || strings.Contains(string(out), "panic") {
			t.Errorf("%v: output %q", args, out)
		}
	}
}
