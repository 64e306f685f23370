package vpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meridian-obs/meridian/collectors/firewall"
	"github.com/meridian-obs/meridian/internal/config"
	"github.com/meridian-obs/meridian/pipeline/record"
)

// Config is the `vpc_logs` section.
type Config struct {
	// WatchDir is polled for new files (recursively); empty turns the
	// watcher off (`meridian ingest vpc-logs PATH` still works).
	WatchDir string `yaml:"watch_dir"`
	// PollInterval between directory scans.
	PollInterval time.Duration `yaml:"poll_interval"`
	// Settle: a file is read once it has not changed for this long (so a
	// file still being written is not read half).
	Settle time.Duration `yaml:"settle"`
	// StateFile remembers the files already ingested; relative to the state
	// directory when not absolute.
	StateFile string `yaml:"state_path"`
	// Fields is the format of files without a header line (default: the
	// version 2 default format).
	Fields []string `yaml:"fields"`
	// Region is the exporter region of records without a region field.
	Region string `yaml:"region"`
	// Networks locates source and destination addresses.
	Networks []firewall.NetworkConfig `yaml:"networks"`
	// BatchRows bounds one write to the pipeline.
	BatchRows int `yaml:"batch_rows"`
}

// DefaultConfig returns the defaults: watcher off.
func DefaultConfig() Config {
	return Config{PollInterval: 10 * time.Second, Settle: 5 * time.Second, StateFile: "vpc-logs-state.json", BatchRows: 5000}
}

// Validate implements config.Validator.
func (c Config) Validate(r *config.Reporter) {
	if c.PollInterval <= 0 {
		r.Errorf("poll_interval", "expected a positive duration, got %s", c.PollInterval)
	}
	if c.Settle < 0 {
		r.Errorf("settle", "expected a duration ≥ 0, got %s", c.Settle)
	}
	if c.WatchDir != "" && c.StateFile == "" {
		r.Errorf("state_path", "expected a file path when watch_dir is set")
	}
	if len(c.Fields) > 0 {
		if _, err := NewFormat(c.Fields); err != nil {
			r.Errorf("fields", "expected VPC flow log field names including srcaddr and dstaddr, got %v", c.Fields)
		}
		for _, f := range c.Fields {
			if _, ok := knownFields[strings.TrimSuffix(strings.TrimPrefix(f, "${"), "}")]; !ok {
				r.Errorf("fields", "unknown field %q (expected AWS field names such as srcaddr, log-status)", f)
			}
		}
	}
	if c.BatchRows < 1 || c.BatchRows > 1_000_000 {
		r.Errorf("batch_rows", "expected 1 to 1000000, got %d", c.BatchRows)
	}
	for i, n := range c.Networks {
		if _, err := netip.ParsePrefix(n.CIDR); err != nil {
			r.Index("networks", i).Errorf("cidr", "expected a CIDR such as 10.0.0.0/8, got %q", n.CIDR)
		}
	}
}

// Options returns the ingestion options of the configuration (without
// metrics and log), for `meridian ingest vpc-logs`.
func (c Config) Options() (Options, error) {
	o := Options{Fields: c.Fields, Region: c.Region, BatchRows: c.BatchRows}
	if len(c.Networks) > 0 {
		o.Networks = &firewall.PrefixTable{}
		for _, n := range c.Networks {
			p, err := netip.ParsePrefix(n.CIDR)
			if err != nil {
				return o, fmt.Errorf("vpc: networks: %w", err)
			}
			o.Networks.Add(p, firewall.Location{Region: n.Region, Site: n.Site})
		}
	}
	return o, nil
}

// Deps of the watcher.
type Deps struct {
	Log      *slog.Logger
	Registry prometheus.Registerer
	Sink     record.Sink[record.Flow]
	StateDir string
}

// Watcher polls a directory and ingests each new file once, across
// restarts (the state file lists the files done).
type Watcher struct {
	cfg       Config
	opts      Options
	sink      record.Sink[record.Flow]
	log       *slog.Logger
	statePath string
	stateAbs  string

	pollMu sync.Mutex // one Poll at a time: a file is never read twice
	mu     sync.Mutex
	state  map[string]fileState

	cancel context.CancelFunc
	done   chan struct{}
}

type fileState struct {
	Size       int64     `json:"size"`
	ModTime    time.Time `json:"mtime"`
	IngestedAt time.Time `json:"ingested_at"`
	Records    int       `json:"records"`
	Bad        int       `json:"bad"`
}

type stateFile struct {
	Version int                  `json:"version"`
	Files   map[string]fileState `json:"files"`
}

// NewWatcher builds the watcher; no I/O.
func NewWatcher(cfg Config, deps Deps) (*Watcher, error) {
	log := deps.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "vpc_logs")
	opts, err := cfg.Options()
	if err != nil {
		return nil, err
	}
	if opts.Metrics, err = NewMetrics(deps.Registry); err != nil {
		return nil, fmt.Errorf("vpc: metrics: %w", err)
	}
	opts.Log = log
	if cfg.WatchDir != "" && deps.Sink == nil {
		return nil, errors.New("vpc: no sink")
	}
	sp := cfg.StateFile
	if sp != "" && !filepath.IsAbs(sp) && deps.StateDir != "" {
		sp = filepath.Join(deps.StateDir, sp)
	}
	abs, _ := filepath.Abs(sp)
	return &Watcher{cfg: cfg, opts: opts, sink: deps.Sink, log: log, statePath: sp, stateAbs: abs, state: map[string]fileState{}}, nil
}

// Start loads the state and starts polling.
func (w *Watcher) Start(context.Context) error {
	if w.cfg.WatchDir == "" {
		return nil
	}
	if err := w.loadState(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel, w.done = cancel, make(chan struct{})
	go w.run(ctx)
	return nil
}

// Stop ends polling; a file being read is abandoned (not marked done) and
// read again after a restart.
func (w *Watcher) Stop(ctx context.Context) error {
	if w.cancel == nil {
		return nil
	}
	w.cancel()
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("vpc: stop: %w", ctx.Err())
	}
}

func (w *Watcher) run(ctx context.Context) {
	defer close(w.done)
	t := time.NewTicker(w.cfg.PollInterval)
	defer t.Stop()
	for {
		if err := w.Poll(ctx); err != nil && ctx.Err() == nil {
			w.log.Warn("vpc log poll", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Poll scans the directory once and ingests the new settled files.
func (w *Watcher) Poll(ctx context.Context) error {
	w.pollMu.Lock()
	defer w.pollMu.Unlock()
	type cand struct {
		rel  string
		path string
		info fs.FileInfo
	}
	var files []cand
	present := map[string]bool{}
	now := time.Now()
	err := filepath.WalkDir(w.cfg.WatchDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() || strings.HasPrefix(d.Name(), ".") || strings.HasSuffix(d.Name(), ".tmp") {
			return nil
		}
		if abs, err := filepath.Abs(p); err == nil && abs == w.stateAbs {
			return nil // the state file itself, when kept in the watched directory
		}
		info, err := d.Info()
		if err != nil {
			return nil // vanished
		}
		rel, _ := filepath.Rel(w.cfg.WatchDir, p)
		present[rel] = true
		w.mu.Lock()
		_, done := w.state[rel]
		w.mu.Unlock()
		if !done && now.Sub(info.ModTime()) >= w.cfg.Settle {
			files = append(files, cand{rel, p, info})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("vpc: scan %s: %w", w.cfg.WatchDir, err)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].rel < files[j].rel })
	changed := false
	w.mu.Lock()
	for rel := range w.state { // forget files that are gone: the state stays small
		if !present[rel] {
			delete(w.state, rel)
			changed = true
		}
	}
	w.mu.Unlock()
	for _, f := range files {
		st, err := IngestFile(ctx, f.path, w.sink, w.opts)
		if err != nil {
			// Sink refused or stopping: not done, retried next poll.
			if changed {
				_ = w.saveState()
			}
			return err
		}
		w.log.Info("vpc log ingested", "file", f.rel, "records", st.Records, "nodata", st.NoData, "skipdata", st.SkipData, "bad", st.BadTotal())
		w.mu.Lock()
		w.state[f.rel] = fileState{Size: f.info.Size(), ModTime: f.info.ModTime().UTC(), IngestedAt: time.Now().UTC(), Records: st.Records, Bad: st.BadTotal()}
		w.mu.Unlock()
		if err := w.saveState(); err != nil {
			return err
		}
		changed = false
	}
	if changed {
		return w.saveState()
	}
	return nil
}

// Ingested reports whether rel (relative to watch_dir) is recorded as done.
func (w *Watcher) Ingested(rel string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.state[rel]
	return ok
}

func (w *Watcher) loadState() error {
	b, err := os.ReadFile(w.statePath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("vpc: state file: %w", err)
	}
	var sf stateFile
	if err := json.Unmarshal(b, &sf); err != nil {
		return fmt.Errorf("vpc: state file %s is not valid (move it away to ingest every file again): %w", w.statePath, err)
	}
	if sf.Files != nil {
		w.state = sf.Files
	}
	return nil
}

// saveState writes the state atomically (temporary file, fsync, rename).
func (w *Watcher) saveState() error {
	w.mu.Lock()
	b, err := json.MarshalIndent(stateFile{Version: 1, Files: w.state}, "", " ")
	w.mu.Unlock()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(w.statePath), 0o755); err != nil {
		return fmt.Errorf("vpc: state file: %w", err)
	}
	tmp := w.statePath + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("vpc: state file: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("vpc: state file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("vpc: state file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("vpc: state file: %w", err)
	}
	if err := os.Rename(tmp, w.statePath); err != nil {
		return fmt.Errorf("vpc: state file: %w", err)
	}
	return nil
}
