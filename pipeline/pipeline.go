// Package pipeline moves rows from the collectors and the probe server into
// ClickHouse: a bounded queue per table, batched inserts flushed by rows or
// time, retries with backoff, a bounded disk spool while ClickHouse is
// unreachable, and replay in order when it returns — without duplicating a
// row (see docs/architecture.md, "Exactly once into ClickHouse").
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meridian-obs/meridian/internal/config"
	"github.com/meridian-obs/meridian/pipeline/record"
)

// Config of the pipeline writer.
type Config struct {
	// FlushRows: a table's queue is flushed when it holds this many rows.
	FlushRows int `yaml:"flush_rows"`
	// FlushInterval: and at least this often when it holds any.
	FlushInterval time.Duration `yaml:"flush_interval"`
	// QueueRows bounds each table's in-memory queue; writers block when it
	// is full (backpressure), they never lose rows.
	QueueRows int `yaml:"queue_rows"`
	// Attempts of an insert before its batch goes to the spool.
	Attempts       int           `yaml:"attempts"`
	InitialBackoff time.Duration `yaml:"initial_backoff"`
	MaxBackoff     time.Duration `yaml:"max_backoff"`
	// SpoolDir holds batches while ClickHouse is unreachable; relative to the
	// state directory when not absolute.
	SpoolDir string `yaml:"spool_dir"`
	// SpoolMaxBytes bounds the spool; when full the oldest batch is dropped
	// and counted (meridian_pipeline_rows_dropped_total{reason="spool_full"}).
	SpoolMaxBytes int64 `yaml:"spool_max_bytes"`
	// ReplayInterval is how often the spool is retried.
	ReplayInterval time.Duration `yaml:"replay_interval"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		FlushRows:      50_000,
		FlushInterval:  time.Second,
		QueueRows:      500_000,
		Attempts:       3,
		InitialBackoff: 200 * time.Millisecond,
		MaxBackoff:     2 * time.Second,
		SpoolDir:       "spool",
		SpoolMaxBytes:  1 << 30,
		ReplayInterval: 2 * time.Second,
	}
}

// Validate implements config.Validator.
func (c Config) Validate(r *config.Reporter) {
	if c.FlushRows < 1 || c.FlushRows > 1_000_000 {
		r.Errorf("flush_rows", "expected 1 to 1000000 rows (one insert must stay one ClickHouse block), got %d", c.FlushRows)
	}
	if c.FlushInterval <= 0 {
		r.Errorf("flush_interval", "expected a positive duration, got %s", c.FlushInterval)
	}
	if c.QueueRows < c.FlushRows {
		r.Errorf("queue_rows", "expected at least flush_rows (%d), got %d", c.FlushRows, c.QueueRows)
	}
	if c.Attempts < 1 {
		r.Errorf("attempts", "expected at least 1, got %d", c.Attempts)
	}
	if c.InitialBackoff <= 0 || c.MaxBackoff < c.InitialBackoff {
		r.Errorf("initial_backoff", "expected 0 < initial_backoff ≤ max_backoff, got %s and %s", c.InitialBackoff, c.MaxBackoff)
	}
	if c.SpoolDir == "" {
		r.Errorf("spool_dir", "expected a directory")
	}
	if c.SpoolMaxBytes < 1<<20 {
		r.Errorf("spool_max_bytes", "expected at least 1048576 bytes, got %d", c.SpoolMaxBytes)
	}
	if c.ReplayInterval <= 0 {
		r.Errorf("replay_interval", "expected a positive duration, got %s", c.ReplayInterval)
	}
}

// Store is what the pipeline needs of the store component.
type Store interface {
	Conn() driver.Conn
	Ready() bool
}

// Deps of the pipeline.
type Deps struct {
	Log      *slog.Logger
	Registry prometheus.Registerer
	Store    Store
	StateDir string
}

// ErrStopped is returned by Write after Stop began.
var ErrStopped = errors.New("pipeline stopped")

// Pipeline is the writer component. Its sinks are safe for concurrent use.
type Pipeline struct {
	cfg     Config
	log     *slog.Logger
	store   Store
	metrics *metrics
	spool   *spool

	flows    *tableWriter[record.Flow]
	firewall *tableWriter[record.FirewallEvent]
	probes   *tableWriter[record.ProbeResult]
	writers  []runner
}

type runner interface {
	start()
	stop(ctx context.Context) error
	name() string
}

// New builds the pipeline; it does no I/O (the spool is opened by Start).
func New(cfg Config, deps Deps) (*Pipeline, error) {
	if deps.Store == nil {
		return nil, errors.New("pipeline: no store")
	}
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	if !filepath.IsAbs(cfg.SpoolDir) && deps.StateDir != "" {
		cfg.SpoolDir = filepath.Join(deps.StateDir, cfg.SpoolDir)
	}
	p := &Pipeline{cfg: cfg, log: deps.Log.With("component", "pipeline"), store: deps.Store}
	p.metrics = newMetrics(p)
	if deps.Registry != nil {
		if err := p.metrics.register(deps.Registry); err != nil {
			return nil, err
		}
	}
	p.flows = newTableWriter(p, FlowsTable)
	p.firewall = newTableWriter(p, FirewallEventsTable)
	p.probes = newTableWriter(p, ProbeResultsTable)
	p.writers = []runner{p.flows, p.firewall, p.probes}
	return p, nil
}

// Flows is the sink of the flows table.
func (p *Pipeline) Flows() record.Sink[record.Flow] { return p.flows }

// FirewallEvents is the sink of the firewall_events table.
func (p *Pipeline) FirewallEvents() record.Sink[record.FirewallEvent] { return p.firewall }

// ProbeResults is the sink of the probe_results table.
func (p *Pipeline) ProbeResults() record.Sink[record.ProbeResult] { return p.probes }

// Start opens the spool (replaying what an earlier run left) and starts the
// flushers and replayers.
func (p *Pipeline) Start(context.Context) error {
	names := make([]string, len(p.writers))
	for i, w := range p.writers {
		names[i] = w.name()
	}
	sp, err := openSpool(p.cfg.SpoolDir, p.cfg.SpoolMaxBytes, names, func(table string, rows int) {
		p.metrics.dropped.WithLabelValues(table, "spool_full").Add(float64(rows))
		p.log.Warn("spool full: dropped the oldest batch", "table", table, "rows", rows)
	})
	if err != nil {
		return err
	}
	p.spool = sp
	if b, n := sp.stats(); n > 0 {
		p.log.Info("spool holds batches from an earlier run; replaying", "batches", n, "bytes", b)
	}
	for _, w := range p.writers {
		w.start()
	}
	return nil
}

// Stop refuses new rows, flushes every queue (to ClickHouse, or to the spool
// when it is down) and tries to drain the spool until ctx ends. What is left
// in the spool is replayed at the next start.
func (p *Pipeline) Stop(ctx context.Context) error {
	var errs []error
	for _, w := range p.writers {
		if err := w.stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", w.name(), err))
		}
	}
	return errors.Join(errs...)
}

// SpoolStats returns the bytes and batches in the spool.
func (p *Pipeline) SpoolStats() (int64, int) {
	if p.spool == nil {
		return 0, 0
	}
	return p.spool.stats()
}
