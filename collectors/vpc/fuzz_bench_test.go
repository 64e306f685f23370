package vpc

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/meridian-obs/meridian/pipeline/record"
)

// FuzzParseLine: any line under any of the two formats gives a verdict, never a panic.
func FuzzParseLine(f *testing.F) {
	for _, l := range []string{v2Accept, v2Reject, v2NoData, v2SkipData, v2IPv6, v5Egress, v5NAT, "", "-", "2 - - - -"} {
		f.Add(l)
	}
	v2, _ := NewFormat(DefaultFields)
	v5, _ := NewFormat(strings.Fields(v5Header))
	f.Fuzz(func(t *testing.T, line string) {
		for _, fm := range []Format{v2, v5} {
			var fl record.Flow
			status, reason := fm.parseLine(line, &fl)
			if reason == "" && status == StatusOK && (!fl.SrcAddr.IsValid() || !fl.DstAddr.IsValid()) {
				t.Fatalf("ok record without addresses: %q", line)
			}
		}
	})
}

// FuzzReader: any file content (text or gzip) is read to the end: every line
// is a record, a counted status or a counted bad record.
func FuzzReader(f *testing.F) {
	f.Add([]byte(strings.Join(DefaultFields, " ") + "\n" + v2Accept + "\n" + v2NoData + "\n"))
	f.Add(gz(f, v5Header+"\n"+v5Egress+"\nbad\n"))
	f.Add([]byte{0x1f, 0x8b, 8, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		sink := &flowCapture{}
		var st Stats
		o := Options{MaxLineBytes: 512}
		if err := o.defaults(); err != nil {
			t.Fatal(err)
		}
		if err := ingestReader(context.Background(), "fuzz", bytes.NewReader(data), sink, o, &st); err != nil {
			t.Fatal(err)
		}
		if st.Records != len(sink.rows) {
			t.Fatalf("records %d, sink %d", st.Records, len(sink.rows))
		}
		for _, r := range sink.rows {
			if r.FlowType != "vpc" || r.TimeReceived.IsZero() {
				t.Fatalf("row %+v", r)
			}
		}
	})
}

// BenchmarkParseLine measures one v2 and one v5 record per op.
func BenchmarkParseLine(b *testing.B) {
	v2, _ := NewFormat(DefaultFields)
	v5, _ := NewFormat(strings.Fields(v5Header))
	for _, c := range []struct {
		name string
		f    Format
		line string
	}{{"v2", v2, v2Accept}, {"v5", v5, v5Egress}} {
		b.Run(c.name, func(b *testing.B) {
			var fl record.Flow
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, reason := c.f.parseLine(c.line, &fl); reason != "" {
					b.Fatal(reason)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
		})
	}
}

// BenchmarkIngestGzip measures a whole gzip file through the reader into a
// discarding sink (decompression included).
func BenchmarkIngestGzip(b *testing.B) {
	data := gz(b, manyLines(100_000))
	sink := record.SinkFunc[record.Flow](func(context.Context, []record.Flow) error { return nil })
	o := Options{}
	_ = o.defaults()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var st Stats
		if err := ingestReader(context.Background(), "bench", bytes.NewReader(data), sink, o, &st); err != nil || st.Records != 100_000 {
			b.Fatal(err, st.Records)
		}
	}
	b.ReportMetric(float64(b.N)*100_000/b.Elapsed().Seconds(), "records/s")
}
