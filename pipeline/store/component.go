package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meridian-obs/meridian/pipeline/chlocal"
)

// Deps of the store component.
type Deps struct {
	Log      *slog.Logger
	Registry prometheus.Registerer
	// StateDir anchors a relative Managed.Dir.
	StateDir string
}

// Store is the ClickHouse component: it starts the managed server when no
// address is configured, connects, migrates, keeps checking the server's
// health, and enforces retention.
type Store struct {
	cfg     Config
	log     *slog.Logger
	managed *chlocal.Server

	mu      sync.RWMutex
	conn    driver.Conn
	version Version
	ready   atomic.Bool

	cancel context.CancelFunc
	wg     sync.WaitGroup

	upGauge   prometheus.Gauge
	retDrops  prometheus.Counter
	migErrors prometheus.Counter
}

// ErrNotReady is returned by Conn before the first successful connection and
// migration.
var ErrNotReady = errors.New("clickhouse is not ready")

// New builds the component; it does no I/O.
func New(cfg Config, deps Deps) (*Store, error) {
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	s := &Store{cfg: cfg, log: deps.Log.With("component", "store")}
	if len(cfg.Addr) == 0 {
		m := cfg.Managed
		if !filepath.IsAbs(m.Dir) && deps.StateDir != "" {
			m.Dir = filepath.Join(deps.StateDir, m.Dir)
		}
		s.managed = chlocal.New(m, deps.Log)
	}
	s.upGauge = prometheus.NewGauge(prometheus.GaugeOpts{Name: "meridian_store_up",
		Help: "1 when ClickHouse answers and migrations are done."})
	s.retDrops = prometheus.NewCounter(prometheus.CounterOpts{Name: "meridian_store_retention_partitions_dropped_total",
		Help: "Daily partitions dropped by retention."})
	s.migErrors = prometheus.NewCounter(prometheus.CounterOpts{Name: "meridian_store_connect_errors_total",
		Help: "Failed attempts to connect to ClickHouse or migrate."})
	if deps.Registry != nil {
		for _, c := range []prometheus.Collector{s.upGauge, s.retDrops, s.migErrors} {
			if err := deps.Registry.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return s, nil
}

// Config returns the store's configuration (the managed address filled in).
func (s *Store) Config() Config { return s.cfg }

// Start starts the managed server (if any) and tries to connect and migrate.
// When ClickHouse cannot be reached, Start still succeeds: the store keeps
// retrying in the background and is not ready meanwhile (writers spool).
func (s *Store) Start(ctx context.Context) error {
	if s.managed != nil {
		if err := s.managed.Start(ctx); err != nil {
			return err
		}
		s.cfg.Addr = []string{s.managed.Addr}
	}
	runCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	first := make(chan error, 1)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.run(runCtx, first)
	}()
	select {
	case err := <-first:
		if err != nil {
			s.log.Warn("clickhouse not reachable at start; retrying in the background", "err", err)
		}
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// run connects and migrates with backoff, then watches health and enforces
// retention.
func (s *Store) run(ctx context.Context, first chan<- error) {
	backoff := 500 * time.Millisecond
	for s.Conn() == nil {
		err := s.connect(ctx)
		if first != nil {
			first <- err
			first = nil
		}
		if err == nil {
			break
		}
		s.migErrors.Inc()
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
	health := time.NewTicker(2 * time.Second)
	defer health.Stop()
	ret := time.NewTimer(10 * time.Second)
	defer ret.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-health.C:
			pctx, cancel := context.WithTimeout(ctx, s.cfg.DialTimeout)
			err := s.Conn().Ping(pctx)
			cancel()
			s.setReady(err == nil)
		case <-ret.C:
			if s.Ready() {
				rctx, cancel := context.WithTimeout(ctx, s.cfg.QueryTimeout)
				dropped, err := EnforceRetention(rctx, s.Conn(), s.cfg, time.Now())
				cancel()
				if err != nil {
					s.log.Warn("retention", "err", err)
				}
				for _, d := range dropped {
					s.log.Info("retention dropped partition", "partition", d)
				}
				s.retDrops.Add(float64(len(dropped)))
			}
			ret.Reset(s.cfg.RetentionInterval)
		}
	}
}

func (s *Store) connect(ctx context.Context) error {
	conn, err := Open(ctx, s.cfg)
	if err != nil {
		return err
	}
	// Each statement is bounded by the query timeout; the whole run by 30
	// minutes (a migration that back-fills a derived table from a large
	// history takes minutes; docs/operations.md).
	mctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	if _, err := Migrate(mctx, conn, s.log); err != nil {
		conn.Close()
		return err
	}
	v, err := ServerVersion(mctx, conn)
	if err != nil {
		conn.Close()
		return err
	}
	s.mu.Lock()
	s.conn, s.version = conn, v
	s.mu.Unlock()
	s.setReady(true)
	s.log.Info("connected to clickhouse", "addr", s.cfg.Addr, "database", s.cfg.Database, "version", v.Raw)
	return nil
}

func (s *Store) setReady(ok bool) {
	s.ready.Store(ok)
	if ok {
		s.upGauge.Set(1)
	} else {
		s.upGauge.Set(0)
	}
}

// Ready reports whether ClickHouse answered the last health check and
// migrations are done.
func (s *Store) Ready() bool { return s.ready.Load() }

// CheckReady pings ClickHouse now.
func (s *Store) CheckReady(ctx context.Context) error {
	c := s.Conn()
	if c == nil {
		return ErrNotReady
	}
	if err := c.Ping(ctx); err != nil {
		s.setReady(false)
		return fmt.Errorf("clickhouse: %w", err)
	}
	s.setReady(true)
	return nil
}

// Conn returns the connection pool, or nil before the first connection.
func (s *Store) Conn() driver.Conn {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.conn
}

// Version returns the server version found at connection.
func (s *Store) Version() Version {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.version
}

// Managed returns the managed server, or nil when an address is configured.
func (s *Store) Managed() *chlocal.Server { return s.managed }

// Stop closes the connection and stops the managed server.
func (s *Store) Stop(ctx context.Context) error {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	s.setReady(false)
	if c := s.Conn(); c != nil {
		c.Close()
	}
	if s.managed != nil {
		return s.managed.Stop(ctx)
	}
	return nil
}
