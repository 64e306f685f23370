package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meridian-obs/meridian/internal/app"
	"github.com/meridian-obs/meridian/internal/testutil/chtest"
	"github.com/meridian-obs/meridian/pipeline/chlocal"
	"github.com/meridian-obs/meridian/pipeline/store"
)

func TestMain(m *testing.M) { chtest.Main(m) }

func TestIngestVPCLogs(t *testing.T) {
	scfg := chtest.Config(t)
	dir := t.TempDir()
	logs := filepath.Join(dir, "logs")
	os.MkdirAll(logs, 0o755)
	var b strings.Builder
	b.WriteString("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n")
	for i := 0; i < 100; i++ {
		action := "ACCEPT"
		if i%4 == 0 {
			action = "REJECT"
		}
		fmt.Fprintf(&b, "2 123456789012 eni-0a1b2c3d 10.0.1.%d 10.0.2.9 4%03d 443 6 10 %d 1764000000 1764000060 %s OK\n", i, i, 1000+i, action)
	}
	b.WriteString("2 123456789012 eni-0a1b2c3d - - - - - - - 1764000000 1764000060 - NODATA\n")
	b.WriteString("this is not a flow log line\n")
	os.WriteFile(filepath.Join(logs, "a.log"), []byte(b.String()), 0o644)
	cfgPath := filepath.Join(dir, "m.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf("state_dir: %s\nclickhouse:\n  addr: [%s]\n  database: %s\n",
		filepath.Join(dir, "state"), scfg.Addr[0], scfg.Database)), 0o600)

	var out, errb bytes.Buffer
	code := Main(context.Background(), []string{"ingest", "vpc-logs", "--config", cfgPath, logs}, &out, &errb)
	if code != ExitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "100 flows stored") || !strings.Contains(out.String(), "1 NODATA") {
		t.Errorf("summary: %s", out.String())
	}
	conn, err := store.Open(context.Background(), scfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var n, deny, bytesSum uint64
	if err := conn.QueryRow(context.Background(),
		"SELECT count(), countIf(action = 'deny'), sum(bytes) FROM flows WHERE flow_type = 'vpc'").Scan(&n, &deny, &bytesSum); err != nil {
		t.Fatal(err)
	}
	if n != 100 || deny != 25 || bytesSum != 100*1000+99*100/2 {
		t.Errorf("flows: %d rows, %d deny, %d bytes", n, deny, bytesSum)
	}
	if code := Main(context.Background(), []string{"ingest", "vpc-logs", "--config", cfgPath, filepath.Join(dir, "missing")}, &out, &errb); code != ExitFail {
		t.Errorf("missing path: exit %d, want %d", code, ExitFail)
	}
}

// Beside a running server on the embedded default (a managed ClickHouse
// under the same state directory), `ingest vpc-logs` reaches that
// ClickHouse instead of failing to start a second one on its port (#16).
func TestIngestVPCLogsBesideRunningManagedServer(t *testing.T) {
	chtest.Config(t) // skips (or fails under CI=true) when clickhouse-server is absent
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	port, err := chlocal.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "m.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf("state_dir: %s\nclickhouse:\n  database: beside\n  managed:\n    tcp_port: %d\n", state, port)), 0o600)
	cfg, err := app.LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	// The "running server": its store with the managed ClickHouse.
	ctx := context.Background()
	running, err := store.New(cfg.ClickHouse, store.Deps{StateDir: state})
	if err != nil {
		t.Fatal(err)
	}
	if err := running.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer running.Stop(context.Background())

	logs := filepath.Join(dir, "a.log")
	os.WriteFile(logs, []byte("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n"+
		"2 123456789012 eni-1 10.0.1.1 10.0.2.9 40000 443 6 10 1000 1764000000 1764000060 ACCEPT OK\n"+
		"2 123456789012 eni-1 10.0.1.2 10.0.2.9 40001 443 6 10 2000 1764000000 1764000060 ACCEPT OK\n"), 0o644)
	var out, errb bytes.Buffer
	if code := Main(ctx, []string{"ingest", "vpc-logs", "--config", cfgPath, logs}, &out, &errb); code != ExitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	if !strings.Contains(errb.String(), "using the managed ClickHouse of the running server") {
		t.Errorf("stderr does not say it used the running server's ClickHouse: %s", errb.String())
	}
	var n, sum uint64
	if err := running.Conn().QueryRow(ctx, "SELECT count(), sum(bytes) FROM beside.flows WHERE flow_type = 'vpc'").Scan(&n, &sum); err != nil {
		t.Fatal(err)
	}
	if n != 2 || sum != 3000 {
		t.Errorf("flows in the running server's ClickHouse: %d rows, %d bytes; want 2, 3000", n, sum)
	}
}
