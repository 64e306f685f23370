package slo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meridian-obs/meridian/internal/config"
)

// Config of the SLO engine (section "slo").
type Config struct {
	// Files are SLO files (Meridian's format or OpenSLO v1).
	Files []string `yaml:"files"`
	// Interval between evaluation cycles.
	Interval time.Duration `yaml:"interval"`
	// LateWindow is re-aggregated from raw data every cycle, so that data
	// arriving up to this late is counted in its own minute.
	LateWindow time.Duration `yaml:"late_window"`
	// BackfillChunk is the span of raw data one back-fill query reads.
	BackfillChunk time.Duration `yaml:"backfill_chunk"`
	// BackfillBudget bounds the time one cycle spends back-filling.
	BackfillBudget time.Duration `yaml:"backfill_budget"`
	// HistoryInterval is how often statuses are written to slo_status.
	HistoryInterval time.Duration `yaml:"history_interval"`
	// DashboardURL is the dashboard link of alerts; {slo} and {group} are
	// replaced. An SLO's alerting.dashboard_url wins.
	DashboardURL string `yaml:"dashboard_url"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Interval:        15 * time.Second,
		LateWindow:      15 * time.Minute,
		BackfillChunk:   24 * time.Hour,
		BackfillBudget:  5 * time.Second,
		HistoryInterval: time.Minute,
	}
}

// Validate implements config.Validator. It also loads the SLO files: an
// invalid file is reported (the server still starts; the file's SLOs are
// left out and the error is counted).
func (c Config) Validate(r *config.Reporter) {
	if c.Interval < time.Second {
		r.Errorf("interval", "expected at least 1s, got %s", c.Interval)
	}
	if c.LateWindow < time.Minute || c.LateWindow > MinuteSpan-time.Hour {
		r.Errorf("late_window", "expected between 1m and 5h, got %s", c.LateWindow)
	}
	if c.BackfillChunk < time.Hour || c.BackfillChunk%time.Hour != 0 {
		r.Errorf("backfill_chunk", "expected whole hours, at least 1h, got %s", c.BackfillChunk)
	}
	if c.BackfillBudget <= 0 {
		r.Errorf("backfill_budget", "expected a positive duration, got %s", c.BackfillBudget)
	}
	if c.HistoryInterval < 0 {
		r.Errorf("history_interval", "expected ≥ 0, got %s", c.HistoryInterval)
	}
	for i, f := range c.Files {
		if f == "" {
			r.Errorf(fmt.Sprintf("files[%d]", i), "expected a path")
		}
	}
}

// ConnSource gives the ClickHouse connection (nil while not connected);
// *store.Store is one.
type ConnSource interface {
	Conn() driver.Conn
}

// Deps of the engine.
type Deps struct {
	Log      *slog.Logger
	Registry prometheus.Registerer
	Store    ConnSource
	// Now is the clock (default time.Now); tests pass an accelerated or
	// back-dated one.
	Now func() time.Time
}

// Listener receives every cycle's statuses (after evaluation, also when
// stale). It must not block.
type Listener func(at time.Time, statuses []Status)

// Engine records per-minute counts and evaluates every SLO.
type Engine struct {
	cfg     Config
	log     *slog.Logger
	deps    Deps
	now     func() time.Time
	metrics *metrics

	mu        sync.RWMutex
	specs     []*Spec
	byFile    map[string][]*Spec
	statuses  map[key]Status
	listeners []Listener
	loadErr   error

	rec         map[recKey]*recState
	recLoaded   bool
	recErrs     map[string]error // per SLO, the last recording error
	settled     map[recKey]time.Time
	mem         map[recKey]*memSLO
	memDirty    map[recKey]bool
	memPruned   time.Time
	lastHistory time.Time

	cycleMu sync.Mutex
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

type key struct{ slo, group string }

// New builds the engine; it does no I/O (files are read at Start).
func New(cfg Config, deps Deps) (*Engine, error) {
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	if deps.Registry == nil {
		deps.Registry = prometheus.NewRegistry()
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Store == nil {
		return nil, errors.New("slo: Deps.Store is required")
	}
	e := &Engine{
		cfg: cfg, deps: deps, now: deps.Now,
		log:      deps.Log.With("component", "slo"),
		byFile:   map[string][]*Spec{},
		statuses: map[key]Status{},
		rec:      map[recKey]*recState{},
		recErrs:  map[string]error{},
		settled:  map[recKey]time.Time{},
	}
	m, err := newMetrics(deps.Registry)
	if err != nil {
		return nil, err
	}
	e.metrics = m
	return e, nil
}

// Listen adds a listener; call before Start.
func (e *Engine) Listen(l Listener) {
	e.mu.Lock()
	e.listeners = append(e.listeners, l)
	e.mu.Unlock()
}

// Reload reads the SLO files again. A file that fails validation keeps the
// SLOs it had (none at first load); its error is returned and counted, and
// every other file's SLOs are applied.
func (e *Engine) Reload() error {
	var errs []error
	byFile := map[string][]*Spec{}
	e.mu.RLock()
	for f, s := range e.byFile {
		byFile[f] = s
	}
	e.mu.RUnlock()
	for _, f := range e.cfg.Files {
		specs, err := LoadFile(f)
		if err != nil {
			e.metrics.loadErrors.Inc()
			e.log.Error("SLO file rejected; its previous SLOs (if any) keep running", "file", f, "err", err)
			errs = append(errs, err)
			continue
		}
		byFile[f] = specs
	}
	return e.SetSpecs(byFile, errors.Join(errs...))
}

// SetSpecs replaces the SLOs (by file). Names must be unique; a file whose
// SLO names clash with an earlier file is left out.
func (e *Engine) SetSpecs(byFile map[string][]*Spec, loadErr error) error {
	files := make([]string, 0, len(byFile))
	for f := range byFile {
		files = append(files, f)
	}
	sort.Strings(files)
	seen := map[string]string{}
	var all []*Spec
	errs := []error{loadErr}
	for _, f := range files {
		clash := false
		for _, s := range byFile[f] {
			if o, ok := seen[s.Name]; ok {
				errs = append(errs, fmt.Errorf("%s: SLO %q: name already defined in %s", f, s.Name, o))
				clash = true
			}
		}
		if clash {
			e.metrics.loadErrors.Inc()
			delete(byFile, f)
			continue
		}
		for _, s := range byFile[f] {
			seen[s.Name] = f
			all = append(all, s)
		}
	}
	sortSpecs(all)
	err := errors.Join(errs...)
	e.mu.Lock()
	e.byFile = byFile
	e.specs = all
	e.loadErr = err
	names := map[string]bool{}
	for _, s := range all {
		names[s.Name] = true
	}
	for k := range e.statuses {
		if !names[k.slo] {
			delete(e.statuses, k)
			e.metrics.forget(k.slo, k.group)
		}
	}
	e.mu.Unlock()
	return err
}

// Specs returns the SLOs in force.
func (e *Engine) Specs() []*Spec {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return append([]*Spec(nil), e.specs...)
}

// Spec returns the SLO named name.
func (e *Engine) Spec(name string) (*Spec, bool) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	for _, s := range e.specs {
		if s.Name == name {
			return s, true
		}
	}
	return nil, false
}

// LoadError is the error of the last load (nil when every file is valid).
func (e *Engine) LoadError() error {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.loadErr
}

// Status returns the last status of an SLO for a group.
func (e *Engine) Status(slo, group string) (Status, bool) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	s, ok := e.statuses[key{slo, group}]
	return s, ok
}

// Statuses returns every SLO × group status, ordered by SLO then group.
func (e *Engine) Statuses() []Status {
	e.mu.RLock()
	defer e.mu.RUnlock()
	out := make([]Status, 0, len(e.statuses))
	for _, s := range e.statuses {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].SLO != out[j].SLO {
			return out[i].SLO < out[j].SLO
		}
		return out[i].Group < out[j].Group
	})
	return out
}

// Start loads the SLO files and starts the cycle loop. Invalid files are
// logged and counted; the engine runs with the valid ones.
func (e *Engine) Start(ctx context.Context) error {
	if len(e.cfg.Files) > 0 {
		_ = e.Reload()
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		t := time.NewTicker(e.cfg.Interval)
		defer t.Stop()
		for {
			if err := e.Cycle(ctx); err != nil && ctx.Err() == nil {
				e.log.Warn("SLO cycle failed; last statuses kept and marked stale", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return nil
}

// Stop ends the loop, waiting for a cycle in progress.
func (e *Engine) Stop(ctx context.Context) error {
	if e.cancel == nil {
		return nil
	}
	e.cancel()
	done := make(chan struct{})
	go func() { e.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Cycle records and evaluates once at the clock's time. The loop calls it;
// tests call it directly with an accelerated clock.
func (e *Engine) Cycle(ctx context.Context) error {
	e.cycleMu.Lock()
	defer e.cycleMu.Unlock()
	now := e.now().UTC()
	conn := e.deps.Store.Conn()
	if conn == nil {
		e.metrics.errors.WithLabelValues("not_connected").Inc()
		e.markStale(now, errors.New("ClickHouse is not connected"))
		return errors.New("slo: ClickHouse is not connected")
	}
	specs := e.Specs()
	start := time.Now()
	if err := e.record(ctx, conn, specs, now); err != nil {
		e.metrics.errors.WithLabelValues("record").Inc()
		e.markStale(now, err)
		return err
	}
	e.metrics.recordSeconds.Observe(time.Since(start).Seconds())
	start = time.Now()
	statuses, err := e.evaluateMem(ctx, conn, specs, now)
	if err != nil {
		e.metrics.errors.WithLabelValues("evaluate").Inc()
		e.markStale(now, err)
		return err
	}
	e.metrics.evalSeconds.Observe(time.Since(start).Seconds())
	e.apply(now, statuses)
	if e.cfg.HistoryInterval >= 0 && (e.lastHistory.IsZero() || now.Sub(e.lastHistory) >= e.cfg.HistoryInterval) {
		if err := e.writeHistory(ctx, conn, now, statuses); err != nil {
			e.metrics.errors.WithLabelValues("history").Inc()
			e.log.Warn("cannot write SLO status history", "err", err)
		} else {
			e.lastHistory = now
		}
	}
	return nil
}

// markStale keeps the last statuses, flags them stale and tells the
// listeners (who must not change alert states on stale statuses).
func (e *Engine) markStale(now time.Time, err error) {
	e.mu.Lock()
	out := make([]Status, 0, len(e.statuses))
	for k, s := range e.statuses {
		s.Stale = true
		s.Error = err.Error()
		e.statuses[k] = s
		out = append(out, s)
		e.metrics.stale.WithLabelValues(s.SLO, s.Group).Set(1)
	}
	ls := append([]Listener(nil), e.listeners...)
	e.mu.Unlock()
	for _, l := range ls {
		l(now, out)
	}
}
