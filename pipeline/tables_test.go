package pipeline

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/meridian-obs/meridian/internal/testutil/chtest"
	"github.com/meridian-obs/meridian/pipeline/record"
)

// TestColumnarMatchesRowAppend: the column-wise AppendRows of a table
// stores exactly what the row-wise Append stores, column for column, for
// rows with edge values (invalid, IPv4 and IPv6 addresses, zero and
// out-of-range times, empty and non-ASCII strings, maximal counters).
func TestColumnarMatchesRowAppend(t *testing.T) {
	conn, _ := chtest.DB(t)
	ctx := context.Background()
	base := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	var rows []record.Flow
	for i := 0; i < 1000; i++ {
		f := testFlow(i, base.Add(time.Duration(i)*time.Second))
		f.InIf, f.OutIf, f.InIfName, f.OutIfName = uint32(i), ^uint32(0)-uint32(i), fmt.Sprintf("eth%d", i%7), "äöü-"+fmt.Sprint(i%3)
		f.TCPFlags, f.SrcAS, f.DstAS, f.SrcSite, f.DstSite = uint8(i), uint32(64512+i), uint32(i*7), "s"+fmt.Sprint(i%5), ""
		f.SrcRole, f.DstRole, f.ExporterSite, f.Action, f.SamplingRate = "edge", "core", "fra1", []string{"", "allow", "deny"}[i%3], uint64(1+i%100)
		f.Packets = ^uint64(0) - uint64(i)
		switch i % 4 {
		case 0:
			f.SrcAddr = netip.Addr{} // invalid: zeros
		case 1:
			f.DstAddr = netip.MustParseAddr("::ffff:198.51.100.7")
		case 2:
			f.TimeStart, f.TimeEnd = time.Time{}, time.Unix(1<<33, 0) // clamped
		}
		rows = append(rows, f)
	}
	ins := func(id uint64, columnar bool) {
		b, err := conn.PrepareBatch(ctx, FlowsTable.insertSQL())
		if err != nil {
			t.Fatal(err)
		}
		if columnar {
			err = FlowsTable.AppendRows(b, rows, id)
		} else {
			for i := range rows {
				if err = FlowsTable.Append(b, &rows[i], id); err != nil {
					break
				}
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Send(); err != nil {
			t.Fatal(err)
		}
	}
	ins(1, false)
	ins(2, true)
	cols := FlowsTable.Columns[:len(FlowsTable.Columns)-1] // all but ingest_batch
	read := func(id uint64) []string {
		q := fmt.Sprintf("SELECT bytes, toString(cityHash64(%s)) FROM flows WHERE ingest_batch = %d ORDER BY bytes",
			strings.Join(cols, ", "), id)
		r, err := conn.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		var out []string
		for r.Next() {
			var b uint64
			var h string
			if err := r.Scan(&b, &h); err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprint(b, " ", h))
		}
		return out
	}
	a, c := read(1), read(2)
	if len(a) != len(rows) || len(c) != len(rows) {
		t.Fatalf("stored %d row-wise and %d column-wise rows, want %d", len(a), len(c), len(rows))
	}
	for i := range a {
		if a[i] != c[i] {
			t.Fatalf("row %d differs: row-wise %s, column-wise %s", i, a[i], c[i])
		}
	}
	// One column read back in full, so equal hashes of wrong data cannot pass.
	var addr string
	if err := conn.QueryRow(ctx, "SELECT IPv6NumToString(dst_addr) FROM flows WHERE ingest_batch = 2 AND bytes = 1").Scan(&addr); err != nil {
		t.Fatal(err)
	}
	if addr != "::ffff:198.51.100.7" {
		t.Errorf("dst_addr of row 1: %s", addr)
	}
}
