package firewall

import (
	"bufio"
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meridian-obs/meridian/pipeline/record"
)

// BenchmarkTCPListener measures lines/s through a TCP connection on loopback:
// framing, parsing, enrichment, batching, into a counting sink. The sender
// runs on the same 2 cores.
func BenchmarkTCPListener(b *testing.B) {
	var got atomic.Int64
	cfg := DefaultConfig()
	cfg.Syslog.TCP = "127.0.0.1:0"
	c, err := New(cfg, Deps{Sink: record.SinkFunc[record.FirewallEvent](func(_ context.Context, rows []record.FirewallEvent) error {
		got.Add(int64(len(rows)))
		return nil
	})})
	if err != nil {
		b.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer c.Stop(context.Background())
	var payload []byte
	for _, l := range benchLines {
		payload = append(payload, l.line...)
		payload = append(payload, '\n')
	}
	conn, err := net.Dial("tcp", c.TCPAddr())
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(conn, 256<<10)
	b.ResetTimer()
	for i := 0; i < b.N; i += len(benchLines) {
		if _, err := w.Write(payload); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	want := int64((b.N + len(benchLines) - 1) / len(benchLines) * len(benchLines))
	deadline := time.Now().Add(time.Minute)
	for got.Load() < want && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	conn.Close()
	if got.Load() != want {
		b.Fatalf("got %d lines, want %d", got.Load(), want)
	}
	b.ReportMetric(float64(want)/b.Elapsed().Seconds(), "lines/s")
}

// BenchmarkUDPListener sends datagrams on loopback as fast as one goroutine
// can and reports the lines/s received and the share lost at the socket
// (the sender shares the 2 cores with the reader).
func BenchmarkUDPListener(b *testing.B) {
	var got atomic.Int64
	cfg := DefaultConfig()
	cfg.Syslog.UDP = "127.0.0.1:0"
	c, err := New(cfg, Deps{Sink: record.SinkFunc[record.FirewallEvent](func(_ context.Context, rows []record.FirewallEvent) error {
		got.Add(int64(len(rows)))
		return nil
	})})
	if err != nil {
		b.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer c.Stop(context.Background())
	conn, err := net.Dial("udp", c.UDPAddr())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := conn.Write([]byte(benchLines[i%len(benchLines)].line)); err != nil {
			b.Fatal(err)
		}
	}
	// Wait until nothing more arrives for 200 ms.
	last, quiet := got.Load(), time.Now()
	for time.Since(quiet) < 200*time.Millisecond && last < int64(b.N) {
		time.Sleep(5 * time.Millisecond)
		if n := got.Load(); n != last {
			last, quiet = n, time.Now()
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(last)/b.Elapsed().Seconds(), "lines/s")
	b.ReportMetric(100*float64(int64(b.N)-last)/float64(b.N), "lost%")
}
