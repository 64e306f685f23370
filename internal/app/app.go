// Package app assembles the Meridian server from its components: built in
// dependency order, started in that order, stopped in reverse so that
// everything in flight is flushed.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"

	"github.com/meridian-obs/meridian/alerting"
	"github.com/meridian-obs/meridian/collectors/firewall"
	"github.com/meridian-obs/meridian/collectors/flow"
	"github.com/meridian-obs/meridian/collectors/vpc"
	"github.com/meridian-obs/meridian/internal/gameday/timeline"
	"github.com/meridian-obs/meridian/internal/kv"
	"github.com/meridian-obs/meridian/internal/telemetry"
	"github.com/meridian-obs/meridian/pipeline"
	"github.com/meridian-obs/meridian/pipeline/store"
	probeserver "github.com/meridian-obs/meridian/probes/server"
	"github.com/meridian-obs/meridian/runbooks"
	rbadapt "github.com/meridian-obs/meridian/runbooks/adapt"
	"github.com/meridian-obs/meridian/slo"
	"github.com/meridian-obs/meridian/web"
)

// Component is the lifecycle every part of the server has.
type Component interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
}

type named struct {
	name string
	c    Component
}

// App is an assembled server.
type App struct {
	Cfg      Config
	Log      *slog.Logger
	Registry *prometheus.Registry
	// State is the durable state store every component shares (see
	// StateFile); opened by New, closed last by Stop.
	State kv.Store

	Store    *store.Store
	Pipeline *pipeline.Pipeline
	Probes   *probeserver.Server
	Web      *web.Server
	Alerting *alerting.Alerting
	SLO      *slo.Engine
	Firewall *firewall.Collector
	Flows    *flow.Collector
	VPCLogs  *vpc.Watcher
	Runbooks *runbooks.Executor

	components []named
	started    int
}

func (a *App) add(name string, c Component) { a.components = append(a.components, named{name, c}) }

// New builds every component. Its only I/O is opening the state store
// (state_dir/state.db), which every component with durable state shares.
func New(cfg Config, log *slog.Logger) (a *App, err error) {
	a = &App{Cfg: cfg, Log: log, Registry: telemetry.NewRegistry()}
	a.State, err = openState(cfg)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = a.State.Close()
		}
	}()
	a.add("state", stateComponent{a.State})
	a.Store, err = store.New(cfg.ClickHouse, store.Deps{Log: log, Registry: a.Registry, StateDir: cfg.StateDir})
	if err != nil {
		return nil, err
	}
	a.add("store", a.Store)
	a.Pipeline, err = pipeline.New(cfg.Pipeline, pipeline.Deps{Log: log, Registry: a.Registry, Store: a.Store,
		StateDir: cfg.StateDir})
	if err != nil {
		return nil, err
	}
	a.add("pipeline", a.Pipeline)

	// (components are built below this line, in dependency order)
	a.Alerting, err = alerting.New(cfg.Alerting, alerting.Deps{Log: log, Registry: a.Registry, Store: a.Store})
	if err != nil {
		return nil, err
	}
	a.add("alerting", a.Alerting)
	// The SLO engine stops before alerting (reverse order): no status
	// reaches a stopped alerting component.
	a.SLO, err = slo.New(cfg.SLO, slo.Deps{Log: log, Registry: a.Registry, Store: a.Store})
	if err != nil {
		return nil, err
	}
	a.SLO.Listen(a.Alerting.ObserveSLO)
	a.add("slo", a.SLO)
	// Runbooks act on alerts; built after alerting and the SLO engine whose
	// status they verify with. (Escalations only reach the audit log and the
	// server log until alerting can send an alert of another component.)
	a.Runbooks, err = runbooks.New(cfg.Runbooks, runbooks.Deps{Log: log, Registry: a.Registry, ClickHouse: a.Store.Conn,
		Status: rbadapt.SLOStatus{Engine: a.SLO},
		// A failed run's escalation goes to Alertmanager like the SLO
		// alerts, firing for an hour unless Alertmanager's own routing acks it.
		Escalate: func(x runbooks.Alert) { a.Alerting.Raise(rbadapt.ToAlerting(x), time.Hour) }})
	if err != nil {
		return nil, err
	}
	a.Alerting.Subscribe(func(x alerting.Alert) { a.Runbooks.HandleAlert(rbadapt.FromAlerting(x)) })
	a.add("runbooks", a.Runbooks)
	a.Probes, err = probeserver.New(cfg.Probes, probeserver.Deps{Log: log, Registry: a.Registry,
		Sink: a.Pipeline.ProbeResults(), StateDir: cfg.StateDir})
	if err != nil {
		return nil, err
	}
	a.add("probes", a.Probes)
	a.Firewall, err = firewall.New(cfg.Firewall, firewall.Deps{Log: log, Registry: a.Registry, Sink: a.Pipeline.FirewallEvents()})
	if err != nil {
		return nil, err
	}
	a.add("firewall", a.Firewall)
	a.Flows, err = flow.New(cfg.Flows, flow.Deps{Log: log, Registry: a.Registry, Sink: a.Pipeline.Flows()})
	if err != nil {
		return nil, err
	}
	a.add("flows", a.Flows)
	a.VPCLogs, err = vpc.NewWatcher(cfg.VPCLogs, vpc.Deps{Log: log, Registry: a.Registry, Sink: a.Pipeline.Flows(), StateDir: cfg.StateDir})
	if err != nil {
		return nil, err
	}
	a.add("vpc_logs", a.VPCLogs)

	// The web server is built last and started last, so that every API it
	// serves is ready; it stops first.
	a.Web, err = web.New(cfg.HTTP, web.Deps{Log: log, Registry: a.Registry, Gatherer: a.Registry, Ready: a.ready,
		Conn: a.Store.Conn, StateDir: cfg.StateDir})
	if err != nil {
		return nil, err
	}
	a.Web.Mount("POST /api/v1/ingest/{table}", web.Admin, a.Pipeline.IngestHandler())
	// (routes are mounted below this line)
	a.Web.Mount("GET /api/v1/slos", web.Viewer, a.SLO.ListHandler())
	a.Web.Mount("GET /api/v1/slos/{name}", web.Viewer, a.SLO.GetHandler())
	a.Web.Mount("GET /api/v1/alerts", web.Viewer, a.Alerting.AlertsHandler())
	a.Web.Mount("POST /api/v1/alertmanager/webhook", web.Self, a.Alerting.WebhookHandler())
	a.Web.Mount("/api/v1/agent/", web.Self, a.Probes.AgentHandler())
	a.Web.Mount("GET /api/v1/agents", web.Viewer, a.Probes.AgentsHandler())
	a.Web.MountRunbooks(a.Runbooks.Handler(web.Identity))
	gamedays := timeline.Handler(a.Store.Conn)
	a.Web.Mount("GET /api/v1/gamedays", web.Viewer, gamedays)
	a.Web.Mount("GET /api/v1/gamedays/{id}", web.Viewer, gamedays)

	a.add("web", a.Web)
	return a, nil
}

// ready is the /readyz check: ClickHouse answers and migrations are done.
func (a *App) ready(ctx context.Context) error {
	if err := a.Store.CheckReady(ctx); err != nil {
		return err
	}
	pending, err := store.Pending(ctx, a.Store.Conn())
	if err != nil {
		return err
	}
	if pending {
		return errors.New("migrations pending")
	}
	return nil
}

// Start starts the components in order. On failure the started ones are
// stopped in reverse.
func (a *App) Start(ctx context.Context) error {
	for i, n := range a.components {
		if err := n.c.Start(ctx); err != nil {
			a.started = i
			sctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			_ = a.Stop(sctx)
			return fmt.Errorf("start %s: %w", n.name, err)
		}
		a.Log.Debug("started", "component", n.name)
	}
	a.started = len(a.components)
	return nil
}

// Stop stops the started components in reverse order.
func (a *App) Stop(ctx context.Context) error {
	var errs []error
	for i := a.started - 1; i >= 0; i-- {
		n := a.components[i]
		if err := n.c.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", n.name, err))
		}
		a.Log.Debug("stopped", "component", n.name)
	}
	a.started = 0
	return errors.Join(errs...)
}

// Options of Run.
type Options struct {
	ConfigPath string
	// Check validates the configuration and returns.
	Check bool
	// Dump prints the effective configuration (secrets redacted) and returns.
	Dump   bool
	Stdout io.Writer
	Stderr io.Writer
	// Started, when set, is called with the app once every component runs.
	Started func(*App)
	// Stopping, when set, is called when the stop begins, before any
	// component stops (to stop what feeds the server first).
	Stopping func()
	// ShutdownTimeout bounds the graceful stop.
	ShutdownTimeout time.Duration
}

// ConfigError marks configuration errors (exit code 2).
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// Run loads the configuration and serves until ctx ends or SIGINT/SIGTERM
// arrives, then stops gracefully.
func Run(ctx context.Context, opts Options) error {
	if opts.Stdout == nil {
		opts.Stdout = os.Stdout
	}
	if opts.Stderr == nil {
		opts.Stderr = os.Stderr
	}
	if opts.ShutdownTimeout == 0 {
		opts.ShutdownTimeout = 60 * time.Second
	}
	cfg, err := LoadConfig(opts.ConfigPath)
	if err != nil {
		return &ConfigError{err}
	}
	if opts.Dump {
		enc := yaml.NewEncoder(opts.Stdout)
		enc.SetIndent(2)
		return enc.Encode(cfg)
	}
	if opts.Check {
		fmt.Fprintf(opts.Stdout, "configuration %s is valid\n", displayPath(opts.ConfigPath))
		return nil
	}
	log := telemetry.NewLogger(cfg.Log, opts.Stderr)
	slog.SetDefault(log)

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	_, shutdownTracing, err := telemetry.SetupTracing(ctx, cfg.Tracing)
	if err != nil {
		return &ConfigError{err}
	}
	a, err := New(cfg, log)
	if err != nil {
		return err
	}
	// SIGHUP reloads the SLO files: a file that fails validation keeps its
	// previous SLOs and the error is logged and counted.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	if err := a.Start(ctx); err != nil {
		return err
	}
	log.Info("meridian is running", "api", a.Web.URL(), "clickhouse", a.Store.Config().Addr)
	if opts.Started != nil {
		opts.Started(a)
	}
wait:
	for {
		select {
		case <-ctx.Done():
			break wait
		case <-hup:
			if err := a.Reload(); err != nil {
				log.Error("reload: some SLO files were rejected", "err", err)
			} else {
				log.Info("reloaded the SLO files", "slos", len(a.SLO.Specs()))
			}
		}
	}
	if opts.Stopping != nil {
		opts.Stopping()
	}
	log.Info("stopping: flushing everything in flight")
	sctx, cancel := context.WithTimeout(context.Background(), opts.ShutdownTimeout)
	defer cancel()
	err = a.Stop(sctx)
	if e := shutdownTracing(sctx); e != nil && err == nil {
		err = e
	}
	if err == nil {
		log.Info("stopped cleanly")
	}
	return err
}

// Reload re-reads what may change without a restart: the SLO files.
func (a *App) Reload() error { return a.SLO.Reload() }

func displayPath(p string) string {
	if p == "" {
		return "(defaults)"
	}
	return p
}
