package kv

import (
	"context"
	"sort"
	"strings"
	"sync"
)

// Memory is a Store that keeps everything in memory: for tests and for
// components run without a state directory. It is not durable.
type Memory struct {
	mu   sync.Mutex
	vals map[string]memEntry
}

type memEntry struct {
	version int64
	val     []byte
}

// NewMemory returns an empty in-memory Store.
func NewMemory() *Memory { return &Memory{vals: map[string]memEntry{}} }

// Get implements Store.
func (m *Memory) Get(_ context.Context, key string) ([]byte, int64, bool, error) {
	if err := CheckKey(key); err != nil {
		return nil, 0, false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.vals[key]
	if !ok {
		return nil, 0, false, nil
	}
	return append([]byte(nil), e.val...), e.version, true, nil
}

// Put implements Store.
func (m *Memory) Put(_ context.Context, key string, val []byte) (int64, error) {
	if err := CheckKey(key); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.vals[key]
	e.version++
	e.val = append([]byte(nil), val...)
	m.vals[key] = e
	return e.version, nil
}

// CompareAndPut implements Store.
func (m *Memory) CompareAndPut(_ context.Context, key string, val []byte, version int64) (int64, error) {
	if err := CheckKey(key); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.vals[key]
	if (!ok && version != 0) || (ok && e.version != version) {
		return 0, ErrConflict
	}
	e.version++
	e.val = append([]byte(nil), val...)
	m.vals[key] = e
	return e.version, nil
}

// Delete implements Store.
func (m *Memory) Delete(_ context.Context, key string) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.vals, key)
	return nil
}

// List implements Store.
func (m *Memory) List(_ context.Context, prefix string) ([]string, error) {
	if err := CheckKey(prefix); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var keys []string
	for k := range m.vals {
		if strings.HasPrefix(k, prefix+"/") {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys, nil
}

// Close implements Store.
func (m *Memory) Close() error { return nil }
