package gameday

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meridian-obs/meridian/alerting"
	"github.com/meridian-obs/meridian/internal/config"
	"github.com/meridian-obs/meridian/pipeline/record"
	"github.com/meridian-obs/meridian/probes/server"
	"github.com/meridian-obs/meridian/runbooks"
	"github.com/meridian-obs/meridian/slo"
)

// Stack is the loop a drill exercises, built from the real components with
// the network's configuration: probe server → (pipeline, ClickHouse) → SLO
// engine → alerting (→ Alertmanager) → runbooks (→ BIND, gobgpd). The end-to-
// end test runs it on its own store and pipeline.
type Stack struct {
	Probes   *server.Server
	SLO      *slo.Engine
	Alerts   *alerting.Alerting
	Runbooks *runbooks.Executor
	RBConfig runbooks.Config

	started []interface{ Stop(context.Context) error }
}

// StackDeps are the server parts the stack uses.
type StackDeps struct {
	Log      *slog.Logger
	Registry prometheus.Registerer
	// Store gives the ClickHouse connection.
	Store    interface{ Conn() driver.Conn }
	Sink     record.Sink[record.ProbeResult]
	StateDir string
	// SLOInterval between evaluations (default 5s).
	SLOInterval time.Duration
}

// RunbookAlert converts an alert for the runbook executor.
func RunbookAlert(a alerting.Alert) runbooks.Alert {
	return runbooks.Alert{Labels: a.Labels, Annotations: a.Annotations, Status: a.Status, StartsAt: a.StartsAt,
		EndsAt: a.EndsAt, Fingerprint: a.Fingerprint}
}

// NewStack builds the components; no I/O.
func NewStack(n *Network, d StackDeps) (*Stack, error) {
	if d.SLOInterval == 0 {
		d.SLOInterval = 5 * time.Second
	}
	if d.Registry == nil {
		d.Registry = prometheus.NewRegistry()
	}
	s := &Stack{}
	pc := n.ProbesConfig()
	sc := n.SLOConfig(d.SLOInterval)
	ac := n.AlertingConfig()
	s.RBConfig = n.RunbooksConfig()
	for name, v := range map[string]config.Validator{"probes": pc, "slo": sc, "alerting": ac, "runbooks": s.RBConfig} {
		r := config.NewReporter()
		r.Validate(name, v)
		if err := r.Err(); err != nil {
			return nil, fmt.Errorf("gameday: generated configuration: %w", err)
		}
	}
	var err error
	if s.Probes, err = server.New(pc, server.Deps{Log: d.Log, Registry: d.Registry, Sink: d.Sink, StateDir: d.StateDir}); err != nil {
		return nil, err
	}
	if s.SLO, err = slo.New(sc, slo.Deps{Log: d.Log, Registry: d.Registry, Store: d.Store}); err != nil {
		return nil, err
	}
	if s.Alerts, err = alerting.New(ac, alerting.Deps{Log: d.Log, Registry: d.Registry, Store: d.Store}); err != nil {
		return nil, err
	}
	if s.Runbooks, err = runbooks.New(s.RBConfig, runbooks.Deps{Log: d.Log, Registry: d.Registry, ClickHouse: d.Store.Conn,
		Status: SLOStatus{s.SLO}}); err != nil {
		return nil, err
	}
	s.SLO.Listen(s.Alerts.ObserveSLO)
	s.Alerts.Subscribe(func(a alerting.Alert) { s.Runbooks.HandleAlert(RunbookAlert(a)) })
	return s, nil
}

// Start starts the components in dependency order.
func (s *Stack) Start(ctx context.Context) error {
	for _, c := range []interface {
		Start(context.Context) error
		Stop(context.Context) error
	}{s.Probes, s.Runbooks, s.Alerts, s.SLO} {
		if err := c.Start(ctx); err != nil {
			sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_ = s.Stop(sctx)
			return err
		}
		s.started = append(s.started, c)
	}
	return nil
}

// Stop stops them in reverse.
func (s *Stack) Stop(ctx context.Context) error {
	var errs []error
	for i := len(s.started) - 1; i >= 0; i-- {
		if err := s.started[i].Stop(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	s.started = nil
	return errors.Join(errs...)
}
