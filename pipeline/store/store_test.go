package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/meridian-obs/meridian/internal/testutil/chtest"
	"github.com/meridian-obs/meridian/pipeline/store"
)

func TestMain(m *testing.M) { chtest.Main(m) }

func TestMigrationsIdempotent(t *testing.T) {
	conn, _ := chtest.DB(t) // migrated once
	ctx := context.Background()
	applied, err := store.Migrate(ctx, conn, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) != 0 {
		t.Fatalf("second run applied %v", applied)
	}
	var n, distinct uint64
	if err := conn.QueryRow(ctx, "SELECT count(), uniqExact(version) FROM schema_migrations").Scan(&n, &distinct); err != nil {
		t.Fatal(err)
	}
	if want := uint64(len(store.Migrations())); n != want || distinct != want {
		t.Fatalf("schema_migrations: %d rows, %d versions; want %d", n, distinct, want)
	}
	for _, table := range []string{"flows", "firewall_events", "probe_results"} {
		var c uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = currentDatabase() AND name = ?", table).Scan(&c); err != nil || c != 1 {
			t.Errorf("table %s: %d (%v)", table, c, err)
		}
	}
	pending, err := store.Pending(ctx, conn)
	if err != nil || pending {
		t.Errorf("pending = %v (%v)", pending, err)
	}
}

// A migration interrupted after some statements re-runs from the start.
func TestMigrationInterruptedReruns(t *testing.T) {
	conn, _ := chtest.DB(t)
	ctx := context.Background()
	// Simulate a crash after the table was created but before the record.
	if err := conn.Exec(ctx, "ALTER TABLE schema_migrations DELETE WHERE version = 1003"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		if ok, _ := store.Pending(ctx, conn); ok {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	applied, err := store.Migrate(ctx, conn, nil)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(applied) != "[1003]" {
		t.Fatalf("applied %v, want [1003]", applied)
	}
}

// Retention drops the daily partitions wholly older than the retention and
// keeps the others.
func TestRetentionDropsOldPartitions(t *testing.T) {
	conn, cfg := chtest.DB(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for _, d := range []int{0, 1, 2, 3, 10} {
		day := now.AddDate(0, 0, -d)
		q := fmt.Sprintf("INSERT INTO probe_results (time, check_name, sent) SELECT toDateTime(%d), 'c', 1", day.Unix())
		if err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
		q = fmt.Sprintf("INSERT INTO flows (time_received, bytes) SELECT toDateTime(%d), 1", day.Unix())
		if err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	cfg.Retention = map[string]time.Duration{"probe_results": 48 * time.Hour, "flows": 0}
	cfg.DefaultRetention = 0 // other tables (rollups) keep everything
	dropped, err := store.EnforceRetention(ctx, conn, cfg, now)
	if err != nil {
		t.Fatal(err)
	}
	// 48h before 2026-11-25 12:00 is 2026-11-23 12:00: days 23 (partly
	// younger) and later stay; 22 and 15 go. firewall_events is empty.
	want := map[string]bool{"probe_results/20261122": true, "probe_results/20261115": true}
	if len(dropped) != len(want) {
		t.Fatalf("dropped %v, want %v", dropped, want)
	}
	for _, d := range dropped {
		if !want[d] {
			t.Errorf("unexpected drop %s", d)
		}
	}
	var probes, flows uint64
	conn.QueryRow(ctx, "SELECT count() FROM probe_results").Scan(&probes)
	conn.QueryRow(ctx, "SELECT count() FROM flows").Scan(&flows)
	if probes != 3 || flows != 5 {
		t.Errorf("left %d probe rows (want 3) and %d flow rows (want 5, retention 0 keeps all)", probes, flows)
	}
}

// Migrations 6004 and 6005 replace the probe rollups: the new tables are
// filled from the history in probe_results, and their views count what
// arrives afterwards. Re-running them (as after an interruption) neither
// loses nor doubles anything.
func TestProbeRollupMigrationKeepsHistory(t *testing.T) {
	conn, _ := chtest.DB(t)
	ctx := context.Background()
	insert := func(from time.Time, n int) {
		t.Helper()
		// A round every 10 minutes, 3 source regions, 5 targets.
		if err := conn.Exec(ctx, fmt.Sprintf(`INSERT INTO probe_results (time, src_region, target, target_region, check_name, probe_type,
	sent, received, rtt_p50_ms, rtt_min_ms, rtt_max_ms, jitter_ms)
SELECT toDateTime(%d + number * 600), concat('r', toString(number %% 3)), concat('t', toString(number %% 5)), 'eu', 'c', 'icmp',
	10, toUInt32(number %% 11), 1.5 + number %% 7, 1, 2, 0.1 FROM system.numbers LIMIT %d`, from.Unix(), n)); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().UTC()
	insert(now.Add(-4*24*time.Hour), 4*144) // four days of history
	// Forget 6004 and 6005, as on a database made before them.
	if err := conn.Exec(ctx, "ALTER TABLE schema_migrations DELETE WHERE version IN (6004, 6005)"); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		done, err := store.AppliedMigrations(ctx, conn)
		if err != nil {
			t.Fatal(err)
		}
		if !done[6004] && !done[6005] {
			break
		}
		if i == 100 {
			t.Fatal("schema_migrations mutation not done")
		}
		time.Sleep(100 * time.Millisecond)
	}
	check := func(when string) {
		t.Helper()
		var rounds, sent, regionRounds, recent uint64
		var hi time.Time
		if err := conn.QueryRow(ctx, `SELECT count(), sum(toUInt64(sent)), sum(length(arrayDistinct([src_region, target_region]))), max(time)
FROM probe_results`).Scan(&rounds, &sent, &regionRounds, &hi); err != nil {
			t.Fatal(err)
		}
		// The 5-minute rollup is rebuilt for the last two days only; its
		// view counts everything after.
		since := hi.Add(-2 * 24 * time.Hour).UTC().Truncate(24 * time.Hour)
		if err := conn.QueryRow(ctx, fmt.Sprintf("SELECT count() FROM probe_results WHERE time >= toDateTime(%d)", since.Unix())).Scan(&recent); err != nil {
			t.Fatal(err)
		}
		for table, want := range map[string][2]uint64{
			"probe_rollup_1h": {rounds, sent}, "probe_rollup_1d": {rounds, sent},
			"probe_rollup_region_1h": {regionRounds, regionRounds * 10}, "probe_rollup_5m": {recent, recent * 10},
		} {
			var r, s uint64
			if err := conn.QueryRow(ctx, "SELECT sum(n_rounds), sum(n_sent) FROM "+table).Scan(&r, &s); err != nil {
				t.Fatal(err)
			}
			if r != want[0] || s != want[1] {
				t.Errorf("%s %s: %d rounds, %d sent; want %d, %d", when, table, r, s, want[0], want[1])
			}
		}
	}
	applied, err := store.Migrate(ctx, conn, nil)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(applied) != "[6004 6005]" {
		t.Fatalf("applied %v", applied)
	}
	check("after the migration")
	insert(now.Add(-time.Hour), 5) // the views count new rounds
	check("after new rounds")
}
