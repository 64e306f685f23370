package kv_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meridian-obs/meridian/internal/kv"
	"github.com/meridian-obs/meridian/internal/kv/kvtest"
)

func TestMemory(t *testing.T) {
	kvtest.Run(t, func(t *testing.T) kv.Store { return kv.NewMemory() })
}

func TestBolt(t *testing.T) {
	kvtest.Run(t, func(t *testing.T) kv.Store {
		s, err := kv.OpenBolt(filepath.Join(t.TempDir(), "state.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

func TestBoltSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := kv.OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	v, err := s.Put(ctx, "r/1", []byte("kept"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = kv.OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	val, got, ok, err := s.Get(ctx, "r/1")
	if err != nil || !ok || string(val) != "kept" || got != v {
		t.Fatalf("after reopen: %q v%d ok %v err %v; want \"kept\" v%d", val, got, ok, err, v)
	}
}

func TestBoltCorruptFileIsAnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	if err := os.WriteFile(path, []byte(strings.Repeat("not a bbolt file ", 500)), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := kv.OpenBolt(path)
	if err == nil {
		s.Close()
		t.Fatal("OpenBolt accepted a corrupt file; want an error")
	}
	if !strings.Contains(err.Error(), path) {
		t.Fatalf("error %q does not name the file", err)
	}
}
