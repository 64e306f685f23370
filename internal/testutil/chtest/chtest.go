// Package chtest gives tests a real ClickHouse: the server named by
// MERIDIAN_TEST_CLICKHOUSE (host:port, native protocol) or else a private
// clickhouse-server started once per test binary on free loopback ports.
// Each test gets its own random database, dropped at cleanup.
//
// When no server can be had the test skips — except under CI=true, where it
// fails: CI must never pass by skipping the real thing.
package chtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/meridian-obs/meridian/internal/testutil/peer"
	"github.com/meridian-obs/meridian/pipeline/chlocal"
	"github.com/meridian-obs/meridian/pipeline/store"
)

var (
	once     sync.Once
	addr     string
	startErr error
	server   *chlocal.Server
	dir      string
)

// Main is for TestMain: it runs the tests, then stops the private server.
func Main(m *testing.M) {
	code := m.Run()
	Shutdown()
	os.Exit(code)
}

// Shutdown stops the private server, if one was started, and removes its data.
func Shutdown() {
	if server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		_ = server.Stop(ctx)
		cancel()
		server = nil
	}
	if dir != "" {
		os.RemoveAll(dir)
	}
}

// Unavailable skips or, under CI=true, fails the test (see package peer).
func Unavailable(t testing.TB, why string, args ...any) {
	t.Helper()
	peer.Unavailable(t, why, args...)
}

// Addr returns the address of the test ClickHouse, starting a private one
// when needed.
func Addr(t testing.TB) string {
	t.Helper()
	once.Do(func() {
		if a := os.Getenv("MERIDIAN_TEST_CLICKHOUSE"); a != "" {
			addr = a
			return
		}
		if _, err := chlocal.FindBinary(""); err != nil {
			startErr = err
			return
		}
		dir, startErr = os.MkdirTemp("", "meridian-chtest-")
		if startErr != nil {
			return
		}
		cfg := chlocal.DefaultConfig()
		cfg.Dir = dir
		cfg.TCPPort, cfg.HTTPPort = 0, 0
		cfg.MaxMemoryUsage = 2 << 30
		server = chlocal.New(cfg, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		if startErr = server.Start(ctx); startErr == nil {
			addr = server.Addr
		}
	})
	if addr == "" {
		Unavailable(t, "no ClickHouse: %v", startErr)
	}
	return addr
}

// Config returns a store configuration for a fresh random database on the
// test server; the database is dropped when the test ends.
func Config(t testing.TB) store.Config {
	t.Helper()
	a := Addr(t)
	cfg := store.DefaultConfig()
	cfg.Addr = []string{a}
	cfg.Database = "test_" + randHex(6)
	cfg.DialTimeout = 2 * time.Second
	cfg.QueryTimeout = 30 * time.Second
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c := cfg
		c.Database = "default"
		conn, err := store.Open(ctx, c)
		if err != nil {
			t.Logf("chtest: cannot drop %s: %v", cfg.Database, err)
			return
		}
		defer conn.Close()
		if err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+cfg.Database); err != nil {
			t.Logf("chtest: drop %s: %v", cfg.Database, err)
		}
	})
	return cfg
}

// DB opens a connection to a fresh migrated database.
func DB(t testing.TB) (driver.Conn, store.Config) {
	t.Helper()
	cfg := Config(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := store.Open(ctx, cfg)
	if err != nil {
		Unavailable(t, "open %v: %v", cfg.Addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := store.Migrate(ctx, conn, nil); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return conn, cfg
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
