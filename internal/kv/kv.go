// Package kv is the small contract that Meridian's durable coordination
// state sits on: runbook runs, approvals, cooldowns and pauses, the probe
// agents' delivery sequence numbers, and the dashboard's sessions.
//
// A single node keeps it in a local bbolt file; a cluster keeps it in
// ZooKeeper under coordination.root, so that whichever node leads sees the
// same state. Components depend on this interface only, never on a backend.
//
// Keys are '/'-separated paths of non-empty segments ("runbooks/runs/42").
// Values are opaque bytes (components store JSON). Every Put is durable
// when it returns: a bbolt commit with fsync, or a ZooKeeper write
// acknowledged by a quorum.
package kv

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// ErrConflict is returned by CompareAndPut when the stored version is not
// the expected one: another writer changed the key in between.
var ErrConflict = errors.New("kv: version conflict")

// Store is a durable key-value store. Implementations are safe for
// concurrent use.
type Store interface {
	// Get returns the value and its version; ok is false when the key is
	// absent (err is nil then).
	Get(ctx context.Context, key string) (val []byte, version int64, ok bool, err error)
	// Put stores val under key, creating it (and any parent path) when
	// absent, and returns the new version.
	Put(ctx context.Context, key string, val []byte) (version int64, err error)
	// CompareAndPut stores val only when the key's current version equals
	// version (0: the key must be absent). It returns ErrConflict otherwise.
	CompareAndPut(ctx context.Context, key string, val []byte, version int64) (newVersion int64, err error)
	// Delete removes key; deleting an absent key is not an error.
	Delete(ctx context.Context, key string) error
	// List returns the full keys directly or indirectly under prefix
	// (a path, without a trailing '/'), sorted.
	List(ctx context.Context, prefix string) ([]string, error)
	// Close releases the store.
	Close() error
}

// CheckKey reports whether key is a valid path: non-empty segments of
// printable characters without '/' at either end.
func CheckKey(key string) error {
	if key == "" {
		return errors.New("kv: empty key")
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("kv: invalid key %q: empty or relative segment", key)
		}
		for _, r := range seg {
			if r < 0x21 || r == 0x7f {
				return fmt.Errorf("kv: invalid key %q: control or space character", key)
			}
		}
	}
	return nil
}
