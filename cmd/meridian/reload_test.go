package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meridian-obs/meridian/internal/syncbuf"
	"github.com/meridian-obs/meridian/internal/testutil/chtest"
)

// SIGHUP reloads the SLO files without a restart: a new SLO appears in the
// API, and a file that became invalid keeps its previous SLOs while the
// error names the file.
func TestSIGHUPReloadsSLOFiles(t *testing.T) {
	scfg := chtest.Config(t)
	bin := buildMeridian(t)
	dir := t.TempDir()
	listen := freeAddr(t)
	token := "test-admin-token-0123456789"
	os.WriteFile(filepath.Join(dir, "token"), []byte(token), 0o600)
	one := filepath.Join(dir, "one.yaml")
	two := filepath.Join(dir, "two.yaml")
	write := func(path, body string) {
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(one, "slos:\n  - {name: first, objective: 0.99, window: 7d, sli: {probe: {}}}\n")
	write(two, "slos: []\n")
	cfgPath := filepath.Join(dir, "meridian.yaml")
	write(cfgPath, fmt.Sprintf(`state_dir: %s
http:
  listen: %s
  tokens:
    - {name: admin, role: admin, token_file: %s}
clickhouse:
  addr: [%s]
  database: %s
slo:
  files: [%s, %s]
`, filepath.Join(dir, "state"), listen, filepath.Join(dir, "token"), scfg.Addr[0], scfg.Database, one, two))

	cmd := exec.Command(bin, "serve", "--config", cfgPath)
	var logs syncbuf.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	base := "http://" + listen
	status := func(name string) int {
		req, _ := http.NewRequest("GET", base+"/api/v1/slos/"+name, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: timed out\n%s", what, logs.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitFor("first SLO served", func() bool { return status("first") == 200 })
	if c := status("second"); c != 404 {
		t.Fatalf("second SLO before reload: %d, want 404", c)
	}

	write(two, "slos:\n  - {name: second, objective: 0.999, window: 30d, sli: {probe: {}}}\n")
	cmd.Process.Signal(syscall.SIGHUP)
	waitFor("second SLO served after SIGHUP", func() bool { return status("second") == 200 })

	// An invalid file keeps its SLOs; the error names file, SLO and field.
	write(two, "slos:\n  - {name: second, objective: 1.5, window: 30d, sli: {probe: {}}}\n")
	cmd.Process.Signal(syscall.SIGHUP)
	waitFor("rejection logged", func() bool { return strings.Contains(logs.String(), "some SLO files were rejected") })
	if c := status("second"); c != 200 {
		t.Errorf("second SLO after a bad reload: %d, want 200 (kept)", c)
	}
	if c := status("first"); c != 200 {
		t.Errorf("first SLO after a bad reload: %d, want 200", c)
	}
	l := logs.String()
	if !strings.Contains(l, "two.yaml") || !strings.Contains(l, "objective") {
		t.Errorf("the rejection does not name the file and field:\n%s", l)
	}
	if cmd.ProcessState != nil {
		t.Fatal("the process exited on SIGHUP")
	}
}
