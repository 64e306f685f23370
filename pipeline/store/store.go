// Package store connects to ClickHouse (native protocol, clickhouse-go/v2),
// runs Meridian's versioned migrations and enforces retention.
package store

import (
	"context"
	"crypto/tls"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/meridian-obs/meridian/internal/config"
	"github.com/meridian-obs/meridian/pipeline/chlocal"
)

// Config of the ClickHouse connection.
type Config struct {
	// Addr lists host:port native endpoints. Empty: Meridian starts and
	// manages a local clickhouse-server (see Managed).
	Addr        []string      `yaml:"addr"`
	Database    string        `yaml:"database"`
	Username    string        `yaml:"username"`
	Password    config.Secret `yaml:"password"`
	TLS         bool          `yaml:"tls"`
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// QueryTimeout bounds every insert and query of Meridian.
	QueryTimeout time.Duration `yaml:"query_timeout"`
	MaxOpenConns int           `yaml:"max_open_conns"`
	// Compression of native blocks: none, lz4 or zstd.
	Compression string `yaml:"compression"`
	// Managed is the embedded clickhouse-server used when Addr is empty.
	Managed chlocal.Config `yaml:"managed"`
	// Retention per table name (flows, firewall_events, probe_results, …);
	// older daily partitions are dropped by Meridian. Tables not listed keep
	// DefaultRetention; 0 keeps forever.
	Retention        map[string]time.Duration `yaml:"retention"`
	DefaultRetention time.Duration            `yaml:"default_retention"`
	// RetentionInterval is how often partitions are checked.
	RetentionInterval time.Duration `yaml:"retention_interval"`
}

// DefaultConfig returns the defaults: a managed local server, database
// "meridian", 30 days of raw data.
func DefaultConfig() Config {
	return Config{
		Database:          "meridian",
		Username:          "default",
		DialTimeout:       5 * time.Second,
		QueryTimeout:      60 * time.Second,
		MaxOpenConns:      8,
		Compression:       "lz4",
		Managed:           chlocal.DefaultConfig(),
		DefaultRetention:  30 * 24 * time.Hour,
		Retention:         map[string]time.Duration{},
		RetentionInterval: time.Hour,
	}
}

var identRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Validate implements config.Validator.
func (c Config) Validate(r *config.Reporter) {
	for i, a := range c.Addr {
		if _, _, err := splitHostPort(a); err != nil {
			r.Errorf("addr["+strconv.Itoa(i)+"]", "expected host:port, got %q", a)
		}
	}
	if !identRe.MatchString(c.Database) {
		r.Errorf("database", "expected a database name of letters, digits and _, got %q", c.Database)
	}
	if c.DialTimeout <= 0 {
		r.Errorf("dial_timeout", "expected a positive duration, got %s", c.DialTimeout)
	}
	if c.QueryTimeout <= 0 {
		r.Errorf("query_timeout", "expected a positive duration, got %s", c.QueryTimeout)
	}
	if c.MaxOpenConns < 1 {
		r.Errorf("max_open_conns", "expected at least 1, got %d", c.MaxOpenConns)
	}
	switch c.Compression {
	case "none", "lz4", "zstd":
	default:
		r.Errorf("compression", "expected none, lz4 or zstd, got %q", c.Compression)
	}
	for t, d := range c.Retention {
		if d < 0 {
			r.Errorf("retention."+t, "expected a duration ≥ 0, got %s", d)
		}
		if d > 0 && d < 24*time.Hour {
			r.Errorf("retention."+t, "retention is enforced by dropping daily partitions: expected 0 or at least 24h, got %s", d)
		}
	}
	if c.DefaultRetention != 0 && c.DefaultRetention < 24*time.Hour {
		r.Errorf("default_retention", "expected 0 or at least 24h, got %s", c.DefaultRetention)
	}
	if c.RetentionInterval <= 0 {
		r.Errorf("retention_interval", "expected a positive duration, got %s", c.RetentionInterval)
	}
	c.Password.Validate(r.Sub("password"))
	if len(c.Addr) == 0 {
		c.Managed.Validate(r.Sub("managed"))
	}
}

func splitHostPort(a string) (string, int, error) {
	i := strings.LastIndexByte(a, ':')
	if i <= 0 {
		return "", 0, fmt.Errorf("missing port")
	}
	p, err := strconv.Atoi(a[i+1:])
	if err != nil || p <= 0 || p > 65535 {
		return "", 0, fmt.Errorf("bad port")
	}
	return a[:i], p, nil
}

// Open connects to the configured servers and the configured database,
// creating the database when missing. It verifies the connection with a
// ping.
func Open(ctx context.Context, c Config) (driver.Conn, error) {
	pw, err := c.Password.Resolve()
	if err != nil {
		return nil, fmt.Errorf("clickhouse password: %w", err)
	}
	opts := func(db string) *clickhouse.Options {
		o := &clickhouse.Options{
			Addr:             c.Addr,
			Protocol:         clickhouse.Native,
			Auth:             clickhouse.Auth{Database: db, Username: c.Username, Password: pw},
			DialTimeout:      c.DialTimeout,
			MaxOpenConns:     c.MaxOpenConns,
			MaxIdleConns:     c.MaxOpenConns,
			ConnMaxLifetime:  time.Hour,
			ConnOpenStrategy: clickhouse.ConnOpenInOrder,
		}
		switch c.Compression {
		case "lz4":
			o.Compression = &clickhouse.Compression{Method: clickhouse.CompressionLZ4}
		case "zstd":
			o.Compression = &clickhouse.Compression{Method: clickhouse.CompressionZSTD}
		}
		if c.TLS {
			o.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		return o
	}
	boot, err := clickhouse.Open(opts("default"))
	if err != nil {
		return nil, fmt.Errorf("clickhouse %v: %w", c.Addr, err)
	}
	pctx, cancel := context.WithTimeout(ctx, c.DialTimeout+c.QueryTimeout)
	defer cancel()
	if err := boot.Ping(pctx); err != nil {
		boot.Close()
		return nil, fmt.Errorf("clickhouse %v: %w", c.Addr, err)
	}
	if err := boot.Exec(pctx, "CREATE DATABASE IF NOT EXISTS "+c.Database); err != nil {
		boot.Close()
		return nil, fmt.Errorf("clickhouse: create database %s: %w", c.Database, err)
	}
	boot.Close()
	conn, err := clickhouse.Open(opts(c.Database))
	if err != nil {
		return nil, fmt.Errorf("clickhouse %v: %w", c.Addr, err)
	}
	if err := conn.Ping(pctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("clickhouse %v: %w", c.Addr, err)
	}
	return conn, nil
}

// Version is a ClickHouse server version.
type Version struct {
	Major, Minor int
	Raw          string
}

// HasTTL reports whether the server supports table TTLs (19.6 and later).
func (v Version) HasTTL() bool { return v.Major > 19 || (v.Major == 19 && v.Minor >= 6) }

// ServerVersion asks the server for its version.
func ServerVersion(ctx context.Context, conn driver.Conn) (Version, error) {
	var raw string
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&raw); err != nil {
		return Version{}, err
	}
	v := Version{Raw: raw}
	parts := strings.SplitN(raw, ".", 3)
	if len(parts) >= 2 {
		v.Major, _ = strconv.Atoi(parts[0])
		v.Minor, _ = strconv.Atoi(parts[1])
	}
	return v, nil
}
