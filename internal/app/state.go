package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/meridian-obs/meridian/internal/kv"
)

// StateFile is the single-node state store under state_dir: remediation
// state, sessions, agent dedupe sequences. One process opens it (bbolt holds
// an exclusive file lock); every component that keeps durable state takes
// App.State, never its own file. In cluster mode App.State is the
// ZooKeeper-backed store instead.
const StateFile = "state.db"

// openState opens the state store the configuration asks for: the local
// bbolt file under state_dir (fsync on every commit).
func openState(cfg Config) (kv.Store, error) {
	if cfg.StateDir == "" {
		return kv.NewMemory(), nil
	}
	if err := os.MkdirAll(cfg.StateDir, 0o750); err != nil {
		return nil, fmt.Errorf("state store: %w", err)
	}
	s, err := kv.OpenBolt(filepath.Join(cfg.StateDir, StateFile))
	if err != nil {
		return nil, fmt.Errorf("state store: %w", err)
	}
	return s, nil
}

// stateComponent closes App.State after every other component has stopped
// (it is added first, so it stops last).
type stateComponent struct{ s kv.Store }

func (stateComponent) Start(context.Context) error  { return nil }
func (c stateComponent) Stop(context.Context) error { return c.s.Close() }
