package icmpengine

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/meridian-obs/meridian/probes"
)

// BenchmarkScale probes N loopback targets (127.10.y.z) at one packet per
// second each through one engine, scheduled as the agent does (100 start
// slots a second, one ProbeMany per slot), then runs fping on the
// same targets at the same rate as the reference. One benchmark iteration is
// one second of probing; run with -benchtime=10x for ten seconds:
//
//	go test -run '^$' -bench Scale -benchtime 10x ./probes/icmpengine/
//
// Reported: cpu_cores (process CPU over wall time), cpu_per_1k_targets,
// p99 RTT under load, the idle baseline p99 (50 targets), inflation (the
// difference), heap and RSS, and the same CPU and p99 for fping.
func BenchmarkScale(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("targets=%d", n), func(b *testing.B) { benchScale(b, n) })
	}
}

func targets(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("127.10.%d.%d", i/250, i%250+1)
	}
	return out
}

// run probes every target at 1 pps for rounds seconds, as the agent does:
// targets spread over the second on a 10 ms grid (100 slots), each slot one
// goroutine calling ProbeMany for its targets once a second. It returns
// every RTT in ms and the number of packets lost.
func run(e *Engine, tg []string, rounds int) (rtts []float64, lost int) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now().Add(50 * time.Millisecond)
	slots := make([][]probes.Check, 100)
	for i, t := range tg {
		s := i * 100 / len(tg)
		slots[s] = append(slots[s], probes.Check{Type: probes.TypeICMP, Target: t, Count: 1, Timeout: 900 * time.Millisecond})
	}
	for s, cs := range slots {
		if len(cs) == 0 {
			continue
		}
		wg.Add(1)
		go func(offset time.Duration, cs []probes.Check) {
			defer wg.Done()
			local := make([]float64, 0, rounds*len(cs))
			l := 0
			for k := 0; k < rounds; k++ {
				time.Sleep(time.Until(start.Add(offset + time.Duration(k)*time.Second)))
				for _, r := range e.ProbeMany(context.Background(), cs) {
					if r.Received == 1 {
						local = append(local, r.RTTAvgMs)
					} else {
						l++
					}
				}
			}
			mu.Lock()
			rtts = append(rtts, local...)
			lost += l
			mu.Unlock()
		}(time.Duration(s)*10*time.Millisecond, cs)
	}
	wg.Wait()
	return rtts, lost
}

func p99(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	sort.Float64s(v)
	return v[(len(v)*99+99)/100-1]
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func rssMB() float64 {
	data, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

func benchScale(b *testing.B, n int) {
	e := open(b)
	rounds := b.N
	// Idle baseline: 50 targets, 4 s (200 RTTs), same engine, nothing else running.
	base, _ := run(e, targets(50), 4)
	baseP99 := p99(base)

	runtime.GC()
	var ms0 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	tg := targets(n)
	b.ResetTimer()
	c0, w0 := cpuTime(), time.Now()
	rtts, lost := run(e, tg, rounds)
	cpu, wall := cpuTime()-c0, time.Since(w0)
	b.StopTimer()
	var ms1 runtime.MemStats
	runtime.ReadMemStats(&ms1)
	cores := cpu.Seconds() / wall.Seconds()
	loadP99 := p99(rtts)
	b.ReportMetric(cores, "cpu_cores")
	b.ReportMetric(cores*1000/float64(n), "cpu_per_1k_targets")
	b.ReportMetric(loadP99, "p99_ms")
	b.ReportMetric(baseP99, "idle_p99_ms")
	b.ReportMetric(loadP99-baseP99, "p99_inflation_ms")
	b.ReportMetric(float64(lost), "lost")
	b.ReportMetric(float64(ms1.HeapInuse)/(1<<20), "heap_MB")
	b.ReportMetric(rssMB(), "rss_MB")

	// Reference: fping on the same targets at the same rate.
	fping, err := exec.LookPath("fping")
	if err != nil {
		if os.Getenv("CI") == "true" {
			b.Fatalf("CI=true and fping (Debian package fping) is missing")
		}
		b.Logf("fping not installed: no reference")
		return
	}
	file := filepath.Join(b.TempDir(), "targets")
	if err := os.WriteFile(file, []byte(strings.Join(tg, "\n")+"\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	// -p 1000: each target once a second; -i spreads the sends over the second.
	interval := fmt.Sprintf("%.3f", 1000.0/float64(n))
	cmd := exec.Command(fping, "-C", strconv.Itoa(rounds), "-p", "1000", "-i", interval, "-q", "-f", file)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	fw0 := time.Now()
	_ = cmd.Run() // exit status 1 when any target lost a packet
	fwall := time.Since(fw0)
	st := cmd.ProcessState
	if st == nil {
		b.Fatalf("fping did not run: %s", stderr.String())
	}
	fcpu := (st.UserTime() + st.SystemTime()).Seconds() / fwall.Seconds()
	var frtts []float64
	flost := 0
	sc := bufio.NewScanner(&stderr)
	for sc.Scan() {
		_, vals, ok := strings.Cut(sc.Text(), " : ")
		if !ok {
			continue
		}
		for _, v := range strings.Fields(vals) {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				frtts = append(frtts, f)
			} else {
				flost++
			}
		}
	}
	b.ReportMetric(fcpu, "fping_cpu_cores")
	b.ReportMetric(p99(frtts), "fping_p99_ms")
	b.ReportMetric(float64(flost), "fping_lost")
	b.Logf("targets %d, %d s: engine %.3f cores, p99 %.3f ms (idle %.3f), lost %d; fping %.3f cores, p99 %.3f ms, lost %d, %d RTTs",
		n, rounds, cores, loadP99, baseP99, lost, fcpu, p99(frtts), flost, len(frtts))
}
