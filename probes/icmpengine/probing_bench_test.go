package icmpengine

import (
	"context"
	"sync"
	"testing"
	"time"

	probing "github.com/prometheus-community/pro-bing"
)

// BenchmarkProBingPerTarget is the design the engine replaces: one
// privileged pro-bing Pinger per target (as smokeping_prober does), 1,000
// loopback targets at 1 pps, one iteration per second:
//
//	go test -run '^$' -bench ProBing -benchtime 10x ./probes/icmpengine/
//
// Every Pinger has its own raw socket, and the kernel hands every echo reply
// to every raw ICMP socket: N targets cost N² deliveries a second.
func BenchmarkProBingPerTarget(b *testing.B) {
	open(b).Close() // skip (or fail under CI) without raw sockets
	const n = 1000
	tg := targets(n)
	rounds := b.N
	var mu sync.Mutex
	var rtts []float64
	lost := 0
	var wg sync.WaitGroup
	pingers := make([]*probing.Pinger, n)
	for i, t := range tg {
		p, err := probing.NewPinger(t)
		if err != nil {
			b.Fatal(err)
		}
		p.SetPrivileged(true)
		p.SetLogger(probing.NoopLogger{})
		p.Count = rounds
		p.Interval = time.Second
		p.Timeout = time.Duration(rounds+1) * time.Second
		p.RecordRtts = true
		pingers[i] = p
	}
	b.ResetTimer()
	c0, w0 := cpuTime(), time.Now()
	for i, p := range pingers {
		wg.Add(1)
		go func(i int, p *probing.Pinger) {
			defer wg.Done()
			time.Sleep(time.Duration(i) * time.Second / n)
			_ = p.RunWithContext(context.Background())
			st := p.Statistics()
			mu.Lock()
			for _, r := range st.Rtts {
				rtts = append(rtts, float64(r)/1e6)
			}
			lost += st.PacketsSent - st.PacketsRecv
			mu.Unlock()
		}(i, p)
	}
	wg.Wait()
	cpu, wall := cpuTime()-c0, time.Since(w0)
	b.StopTimer()
	cores := cpu.Seconds() / wall.Seconds()
	b.ReportMetric(cores, "cpu_cores")
	b.ReportMetric(cores, "cpu_per_1k_targets")
	b.ReportMetric(p99(rtts), "p99_ms")
	b.ReportMetric(float64(lost), "lost")
	b.ReportMetric(rssMB(), "rss_MB")
	b.Logf("pro-bing, %d Pingers, %d s: %.3f cores, p99 %.3f ms, lost %d, %d RTTs", n, rounds, cores, p99(rtts), lost, len(rtts))
}
