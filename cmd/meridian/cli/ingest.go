package cli

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"time"

	"github.com/meridian-obs/meridian/collectors/vpc"
	"github.com/meridian-obs/meridian/internal/app"
	"github.com/meridian-obs/meridian/internal/telemetry"
	"github.com/meridian-obs/meridian/pipeline"
	"github.com/meridian-obs/meridian/pipeline/store"
)

func init() {
	Register(Command{Name: "ingest", Summary: "load records from files: ingest vpc-logs [--config FILE] PATH…", Run: ingest})
}

func ingest(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "vpc-logs" {
		fmt.Fprintln(stderr, "usage: meridian ingest vpc-logs [--config FILE] PATH…")
		return ExitConfig
	}
	fs := NewFlagSet("ingest vpc-logs", stderr)
	cfgPath := fs.String("config", "", "configuration file (ClickHouse, pipeline and vpc_logs sections)")
	if err := fs.Parse(args[1:]); err != nil {
		return ExitConfig
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "usage: meridian ingest vpc-logs [--config FILE] PATH…")
		return ExitConfig
	}
	cfg, err := app.LoadConfig(*cfgPath)
	if err != nil {
		return Fail(stderr, &app.ConfigError{Err: err})
	}
	opts, err := cfg.VPCLogs.Options()
	if err != nil {
		return Fail(stderr, &app.ConfigError{Err: err})
	}
	log := telemetry.NewLogger(cfg.Log, stderr)
	reg := telemetry.NewRegistry()
	opts.Log = log
	if opts.Metrics, err = vpc.NewMetrics(reg); err != nil {
		return Fail(stderr, err)
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	// Beside a running server on the embedded default, reach its managed
	// ClickHouse instead of starting a second one on the same port and
	// directory; the rows then go through this command's own pipeline (and
	// spool directory, so that it never shares files with the server's).
	stateDir := cfg.StateDir
	if len(cfg.ClickHouse.Addr) == 0 {
		if addr, pid, ok := runningManaged(cfg.ClickHouse.Managed.Dir, cfg.StateDir); ok {
			fmt.Fprintf(stderr, "meridian: using the managed ClickHouse of the running server (pid %d, %s)\n", pid, addr)
			cfg.ClickHouse.Addr = []string{addr}
			stateDir = filepath.Join(cfg.StateDir, "ingest-cli")
		}
	}
	st, err := store.New(cfg.ClickHouse, store.Deps{Log: log, Registry: reg, StateDir: cfg.StateDir})
	if err != nil {
		return Fail(stderr, err)
	}
	pl, err := pipeline.New(cfg.Pipeline, pipeline.Deps{Log: log, Registry: reg, Store: st, StateDir: stateDir})
	if err != nil {
		return Fail(stderr, err)
	}
	if err := st.Start(ctx); err != nil {
		return Fail(stderr, err)
	}
	defer st.Stop(context.Background())
	if err := pl.Start(ctx); err != nil {
		return Fail(stderr, err)
	}
	code := ExitOK
	for _, path := range fs.Args() {
		stats, err := vpc.IngestPath(ctx, path, pl.Flows(), opts)
		fmt.Fprintf(stdout, "%s: %s\n", path, stats)
		for _, e := range stats.Errors {
			fmt.Fprintf(stderr, "  %v\n", e)
		}
		if err != nil {
			fmt.Fprintf(stderr, "meridian: %s: %v\n", path, err)
			code = ExitFail
		}
	}
	// Stopping the pipeline flushes every row to ClickHouse (or to the spool,
	// replayed by the next start of the server, if ClickHouse is down).
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := pl.Stop(sctx); err != nil {
		return Fail(stderr, err)
	}
	if b, n := pl.SpoolStats(); n > 0 {
		if stateDir != cfg.StateDir {
			fmt.Fprintf(stderr, "meridian: ClickHouse unavailable: %d batches (%d bytes) wait in %s; run the command again to deliver them\n", n, b, stateDir)
		} else {
			fmt.Fprintf(stderr, "meridian: ClickHouse unavailable: %d batches (%d bytes) wait in the spool for the server\n", n, b)
		}
	}
	return code
}

var (
	tcpPortRE = regexp.MustCompile(`<tcp_port>([0-9]+)</tcp_port>`)
	statusRE  = regexp.MustCompile(`(?m)^PID: ([0-9]+)`)
)

// runningManaged finds the managed clickhouse-server of a server running on
// the same state directory: the configuration Meridian wrote for it (its
// port), the status file the server keeps in its data path while it runs
// (its PID), a live process with that PID and a port that answers.
func runningManaged(dir, stateDir string) (addr string, pid int, ok bool) {
	if !filepath.IsAbs(dir) && stateDir != "" {
		dir = filepath.Join(stateDir, dir)
	}
	conf, err := os.ReadFile(filepath.Join(dir, "config.xml"))
	if err != nil {
		return "", 0, false
	}
	status, err := os.ReadFile(filepath.Join(dir, "data", "status"))
	if err != nil {
		return "", 0, false
	}
	pm, sm := tcpPortRE.FindSubmatch(conf), statusRE.FindSubmatch(status)
	if pm == nil || sm == nil {
		return "", 0, false
	}
	if pid, err = strconv.Atoi(string(sm[1])); err != nil || pid <= 0 || syscall.Kill(pid, 0) != nil {
		return "", 0, false
	}
	addr = net.JoinHostPort("127.0.0.1", string(pm[1]))
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", 0, false
	}
	c.Close()
	return addr, pid, true
}
