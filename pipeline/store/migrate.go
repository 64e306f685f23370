package store

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Migration is one versioned schema change. Statements must be idempotent
// (CREATE … IF NOT EXISTS and the like): a migration interrupted half-way is
// run again from its first statement at the next start, and it is recorded
// in schema_migrations only after every statement succeeded.
//
// Versions are grouped by owner so that components add their tables without
// touching each other's: 1xxx pipeline base tables, 2xxx flow and firewall
// rollups, 3xxx SLO, 4xxx alerting and runbooks, 5xxx game days.
type Migration struct {
	Version    uint32
	Name       string
	Statements []string
	// Tables created by this migration that hold time series data, with the
	// column their daily partitions are keyed by. Retention drops their old
	// partitions.
	Partitioned []string
	// Run, when set, runs after Statements (before the migration is
	// recorded): work that SQL statements alone cannot bound, such as
	// back-filling a derived table a day at a time. Like Statements it
	// must be safe to run again from the start.
	Run func(ctx context.Context, conn driver.Conn) error
}

var (
	regMu      sync.Mutex
	registered = map[uint32]Migration{}
)

// Register adds migrations to the global list; called from init functions.
// A duplicate version panics at start-up (a programming error).
func Register(ms ...Migration) {
	regMu.Lock()
	defer regMu.Unlock()
	for _, m := range ms {
		if old, ok := registered[m.Version]; ok {
			panic(fmt.Sprintf("store: migration %d registered twice (%s and %s)", m.Version, old.Name, m.Name))
		}
		registered[m.Version] = m
	}
}

// Migrations returns every registered migration in version order.
func Migrations() []Migration {
	regMu.Lock()
	defer regMu.Unlock()
	out := make([]Migration, 0, len(registered))
	for _, m := range registered {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out
}

// PartitionedTables lists the tables whose old partitions retention drops.
func PartitionedTables() []string {
	var out []string
	for _, m := range Migrations() {
		out = append(out, m.Partitioned...)
	}
	return out
}

const createMigrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version UInt32,
	name String,
	applied_at DateTime
) ENGINE = MergeTree ORDER BY version`

// Migrate applies every registered migration not yet recorded in
// schema_migrations, in order. It returns the versions it applied.
func Migrate(ctx context.Context, conn driver.Conn, log *slog.Logger) ([]uint32, error) {
	if log == nil {
		log = slog.Default()
	}
	if err := conn.Exec(ctx, createMigrationsTable); err != nil {
		return nil, fmt.Errorf("migrations: create schema_migrations: %w", err)
	}
	done, err := AppliedMigrations(ctx, conn)
	if err != nil {
		return nil, err
	}
	var applied []uint32
	for _, m := range Migrations() {
		if done[m.Version] {
			continue
		}
		for i, stmt := range m.Statements {
			if err := conn.Exec(ctx, stmt); err != nil {
				return applied, fmt.Errorf("migration %d (%s), statement %d (%s): %w", m.Version, m.Name, i+1,
					firstLine(stmt), err)
			}
		}
		if m.Run != nil {
			if err := m.Run(ctx, conn); err != nil {
				return applied, fmt.Errorf("migration %d (%s): %w", m.Version, m.Name, err)
			}
		}
		// INSERT … VALUES through Exec hangs on ClickHouse 18.16 with
		// clickhouse-go; INSERT … SELECT of literals works everywhere.
		if err := conn.Exec(ctx, fmt.Sprintf("INSERT INTO schema_migrations (version, name, applied_at) SELECT %d, %s, now()",
			m.Version, Quote(m.Name))); err != nil {
			return applied, fmt.Errorf("migration %d (%s): record: %w", m.Version, m.Name, err)
		}
		log.Info("applied migration", "version", m.Version, "name", m.Name)
		applied = append(applied, m.Version)
	}
	return applied, nil
}

// AppliedMigrations reads schema_migrations.
func AppliedMigrations(ctx context.Context, conn driver.Conn) (map[uint32]bool, error) {
	rows, err := conn.Query(ctx, "SELECT DISTINCT version FROM schema_migrations")
	if err != nil {
		return nil, fmt.Errorf("migrations: read schema_migrations: %w", err)
	}
	defer rows.Close()
	done := map[uint32]bool{}
	for rows.Next() {
		var v uint32
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		done[v] = true
	}
	return done, rows.Err()
}

// Pending reports whether any registered migration is not applied yet.
func Pending(ctx context.Context, conn driver.Conn) (bool, error) {
	done, err := AppliedMigrations(ctx, conn)
	if err != nil {
		return true, err
	}
	for _, m := range Migrations() {
		if !done[m.Version] {
			return true, nil
		}
	}
	return false, nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return s
}

// Quote renders s as a ClickHouse string literal.
func Quote(s string) string {
	var b strings.Builder
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\', '\'':
			b.WriteByte('\\')
			b.WriteByte(c)
		case 0:
			b.WriteString("\\0")
		case '\n':
			b.WriteString("\\n")
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('\'')
	return b.String()
}
