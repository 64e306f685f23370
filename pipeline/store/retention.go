package store

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// RetentionFor returns the retention of a table (0: keep forever).
func (c Config) RetentionFor(table string) time.Duration {
	if d, ok := c.Retention[table]; ok {
		return d
	}
	return c.DefaultRetention
}

// EnforceRetention drops, in every partitioned table, the daily partitions
// that lie wholly before now − retention. It returns the partitions dropped
// as "table/YYYYMMDD".
func EnforceRetention(ctx context.Context, conn driver.Conn, c Config, now time.Time) ([]string, error) {
	var dropped []string
	for _, table := range PartitionedTables() {
		keep := c.RetentionFor(table)
		if keep <= 0 {
			continue
		}
		// A partition (day D) is dropped when its end (D+1 00:00) is at or
		// before the cutoff: no row in it is younger than the retention.
		cutoff := now.UTC().Add(-keep)
		rows, err := conn.Query(ctx, `SELECT DISTINCT partition FROM system.parts
			WHERE database = currentDatabase() AND table = ? AND active`, table)
		if err != nil {
			return dropped, fmt.Errorf("retention: list partitions of %s: %w", table, err)
		}
		var parts []string
		for rows.Next() {
			var p string
			if err := rows.Scan(&p); err != nil {
				rows.Close()
				return dropped, err
			}
			parts = append(parts, p)
		}
		rows.Close()
		for _, p := range parts {
			day, err := time.Parse("20060102", p)
			if err != nil {
				continue // not a daily partition
			}
			if day.Add(24 * time.Hour).After(cutoff) {
				continue
			}
			if _, err := strconv.Atoi(p); err != nil {
				continue
			}
			if err := conn.Exec(ctx, fmt.Sprintf("ALTER TABLE %s DROP PARTITION %s", table, p)); err != nil {
				return dropped, fmt.Errorf("retention: drop %s partition %s: %w", table, p, err)
			}
			dropped = append(dropped, table+"/"+p)
		}
	}
	return dropped, nil
}
