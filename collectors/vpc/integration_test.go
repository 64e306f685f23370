package vpc

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meridian-obs/meridian/internal/testutil/chtest"
	"github.com/meridian-obs/meridian/internal/testutil/pipetest"
)

func TestMain(m *testing.M) { chtest.Main(m) }

// TestIngestIntoClickHouse runs IngestPath (what `meridian ingest vpc-logs`
// runs) through the real pipeline into the flows table.
func TestIngestIntoClickHouse(t *testing.T) {
	st, p, _ := pipetest.Start(t, 1000)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dir := t.TempDir()
	// 3000 accepted records (bytes 1..3000), a reject, NODATA, a bad line, v5 in gzip.
	plain := strings.Join(DefaultFields, " ") + "\n" + manyLines(3000) + v2Reject + "\n" + v2NoData + "\nbroken line\n"
	if err := os.WriteFile(filepath.Join(dir, "a.log"), []byte(plain), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "b.log.gz"), gz(t, v5Header+"\n"+v5Egress+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	stats, err := IngestPath(ctx, dir, p.Flows(), Options{Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if stats.Records != 3002 || stats.NoData != 1 || stats.BadTotal() != 1 {
		t.Errorf("stats %+v", stats)
	}
	var n, bytes, denies uint64
	if err := st.Conn().QueryRow(ctx, "SELECT count(), sum(bytes), countIf(action = 'deny') FROM flows WHERE flow_type = 'vpc'").Scan(&n, &bytes, &denies); err != nil {
		t.Fatal(err)
	}
	if want := uint64(3000*3001/2 + 4249 + 5200); n != 3002 || bytes != want || denies != 1 {
		t.Errorf("flows: count %d bytes %d denies %d, want 3002 %d 1", n, bytes, denies, want)
	}
	var region, site, outIf, src string
	var flags uint8
	var tr time.Time
	if err := st.Conn().QueryRow(ctx, "SELECT exporter_region, exporter_site, out_if_name, IPv6NumToString(src_addr), tcp_flags, time_received FROM flows WHERE exporter_region = 'eu-west-1'").
		Scan(&region, &site, &outIf, &src, &flags, &tr); err != nil {
		t.Fatal(err)
	}
	if region != "eu-west-1" || site != "euw1-az2" || outIf != "eni-0abcd1234" || src != "::ffff:10.0.1.5" || flags != 19 || tr.Unix() != 1700000060 {
		t.Errorf("v5 row: %s %s %s %s %d %v", region, site, outIf, src, flags, tr)
	}
}
