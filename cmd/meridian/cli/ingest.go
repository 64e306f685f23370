package cli

import (
	"context"
	"fmt"
	"io"
	"os/signal"
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

	st, err := store.New(cfg.ClickHouse, store.Deps{Log: log, Registry: reg, StateDir: cfg.StateDir})
	if err != nil {
		return Fail(stderr, err)
	}
	pl, err := pipeline.New(cfg.Pipeline, pipeline.Deps{Log: log, Registry: reg, Store: st, StateDir: cfg.StateDir})
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
		fmt.Fprintf(stderr, "meridian: ClickHouse unavailable: %d batches (%d bytes) wait in the spool for the server\n", n, b)
	}
	return code
}
