package main

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/meridian-obs/meridian/pipeline/record"
	"github.com/meridian-obs/meridian/probes/server"
)

// rttSink keeps the RTTs of the rounds delivered after a start time.
type rttSink struct {
	mu     sync.Mutex
	from   time.Time
	rtts   []float64
	lost   int
	rounds int
	errs   map[string]int
}

func (s *rttSink) Write(_ context.Context, rows []record.ProbeResult) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range rows {
		if s.from.IsZero() || r.Time.Before(s.from) {
			continue
		}
		s.rounds++
		s.lost += int(r.Sent - r.Received)
		if r.Error != "" {
			if s.errs == nil {
				s.errs = map[string]int{}
			}
			s.errs[r.Error]++
		}
		for _, us := range r.RTTsUs {
			s.rtts = append(s.rtts, float64(us)/1000)
		}
	}
	return nil
}

func procCPU(pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond // USER_HZ = 100
}

func procRSSMB(pid int) float64 {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			kb, _ := strconv.ParseFloat(strings.Fields(l)[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// BenchmarkAgentICMP runs the real meridian-agent binary with N ICMP checks
// (127.10.y.z, one packet a second each) assigned by a probe server in this
// process, and measures the agent process alone: scheduling, the ICMP
// engine, batching, gzip and delivery. One iteration is one second:
//
//	go test -run '^$' -bench AgentICMP -benchtime 10x ./cmd/meridian-agent/
func BenchmarkAgentICMP(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("the ICMP engine needs raw sockets (root)")
	}
	dir := b.TempDir()
	bin := filepath.Join(dir, "meridian-agent")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("targets=%d", n), func(b *testing.B) { benchAgent(b, bin, n) })
	}
}

func benchAgent(b *testing.B, bin string, n int) {
	dir := b.TempDir()
	sink := &rttSink{}
	cfg := server.DefaultConfig()
	cfg.StateFile = filepath.Join(dir, "agents.json")
	cfg.Agents = []server.AgentConfig{{Name: "bench", TokenHash: server.HashToken("t")}}
	for i := 0; i < n; i++ {
		cfg.Checks = append(cfg.Checks, server.CheckConfig{Name: fmt.Sprintf("c%d", i), Type: "icmp",
			Target: fmt.Sprintf("127.10.%d.%d", i/250, i%250+1), Count: 1, Timeout: 900 * time.Millisecond, Interval: time.Second})
	}
	srv, err := server.New(cfg, server.Deps{Sink: sink})
	if err != nil {
		b.Fatal(err)
	}
	srv.Start(context.Background())
	ts := httptest.NewServer(srv.AgentHandler())
	defer ts.Close()
	os.WriteFile(filepath.Join(dir, "token"), []byte("t"), 0o600)
	conf := filepath.Join(dir, "agent.yaml")
	os.WriteFile(conf, []byte(fmt.Sprintf("name: bench\nserver: %s\ntoken_file: %s\nspool_dir: %s\nflush_interval: 1s\nmetrics_listen: \"\"\nicmp_engine: engine\n",
		ts.URL, filepath.Join(dir, "token"), filepath.Join(dir, "spool"))), 0o600)
	cmd := exec.Command(bin, "run", "--config", conf)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	// Warm up: every check scheduled and delivering.
	time.Sleep(3 * time.Second)
	pid := cmd.Process.Pid
	b.ResetTimer()
	start := time.Now()
	sink.mu.Lock()
	sink.from = start
	sink.mu.Unlock()
	c0 := procCPU(pid)
	time.Sleep(time.Duration(b.N) * time.Second)
	cpu := procCPU(pid) - c0
	wall := time.Since(start)
	rss := procRSSMB(pid)
	b.StopTimer()
	time.Sleep(2 * time.Second) // the last batches
	sink.mu.Lock()
	defer sink.mu.Unlock()
	sort.Float64s(sink.rtts)
	p99 := 0.0
	if len(sink.rtts) > 0 {
		p99 = sink.rtts[(len(sink.rtts)*99+99)/100-1]
	}
	cores := cpu.Seconds() / wall.Seconds()
	b.ReportMetric(cores, "cpu_cores")
	b.ReportMetric(cores*1000/float64(n), "cpu_per_1k_targets")
	b.ReportMetric(p99, "p99_ms")
	b.ReportMetric(rss, "rss_MB")
	b.ReportMetric(float64(sink.lost), "lost")
	b.Logf("agent binary, %d ICMP checks at 1/s, %s: %.3f cores, RSS %.0f MB, %d rounds delivered, p99 %.3f ms, lost %d %v",
		n, wall.Round(time.Second), cores, rss, sink.rounds, p99, sink.lost, sink.errs)
}
