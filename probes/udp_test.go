package probes

import (
	"context"
	"math"
	"math/rand/v2"
	"net"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/meridian-obs/meridian/probes/stats"
)

// lossyEcho is a UDP echo server with ground truth: each packet is dropped
// with probability loss, else echoed after delay + uniform[0, jitter). It
// records what it did so the test can compare.
type lossyEcho struct {
	conn          net.PacketConn
	delay, jitter time.Duration
	loss          float64
	dupEvery      int // echo every n-th packet twice (0: never)
	garbage       bool

	mu       sync.Mutex
	dropped  int
	answered int
	delays   []time.Duration
	bySeq    map[uint32]time.Duration // hold time of each answered probe sequence
}

func startLossyEcho(t *testing.T, e *lossyEcho) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.conn = c
	t.Cleanup(func() { c.Close() })
	rng := rand.New(rand.NewPCG(1, 2))
	go func() {
		n := 0
		for {
			buf := make([]byte, 2048)
			k, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			n++
			e.mu.Lock()
			if rng.Float64() < e.loss {
				e.dropped++
				e.mu.Unlock()
				continue
			}
			d := e.delay
			if e.jitter > 0 {
				d += time.Duration(rng.Int64N(int64(e.jitter)))
			}
			e.answered++
			dup := e.dupEvery > 0 && n%e.dupEvery == 0
			e.mu.Unlock()
			got := time.Now()
			time.AfterFunc(d, func() {
				// The ground truth is the delay actually applied (timer
				// wake-up included), measured at the server.
				c.WriteTo(buf[:k], from)
				held := time.Since(got)
				e.mu.Lock()
				e.delays = append(e.delays, held)
				if _, seq, _, ok := DecodeUDPPayload(buf[:k]); ok {
					if e.bySeq == nil {
						e.bySeq = map[uint32]time.Duration{}
					}
					e.bySeq[seq] = held
				}
				e.mu.Unlock()
				if dup {
					c.WriteTo(buf[:k], from)
				}
				if e.garbage {
					c.WriteTo([]byte("not a probe"), from)
				}
			})
		}
	}()
	return c.LocalAddr().String()
}

func TestUDPAccuracyDelayJitterLoss(t *testing.T) {
	e := &lossyEcho{delay: 5 * time.Millisecond, jitter: 4 * time.Millisecond, loss: 0.10}
	addr := startLossyEcho(t, e)
	reg := prometheus.NewRegistry()
	p := &UDP{Metrics: NewMetrics(reg)}
	const n = 400
	r := p.Probe(context.Background(), Check{Type: TypeUDP, Target: addr, Count: n, Spacing: 2 * time.Millisecond, Timeout: time.Second})
	e.mu.Lock()
	defer e.mu.Unlock()
	if r.Sent != n || r.Received != e.answered || n-r.Received != e.dropped {
		t.Fatalf("sent %d received %d; server answered %d dropped %d", r.Sent, r.Received, e.answered, e.dropped)
	}
	// Loss within 3 binomial standard deviations of the configured 10%.
	sd := math.Sqrt(0.1 * 0.9 / n)
	if math.Abs(r.LossRatio-0.1) > 3*sd {
		t.Errorf("loss %.4f, want 0.10 ± %.4f", r.LossRatio, 3*sd)
	}
	// Mean RTT within 0.5 ms of the mean injected delay.
	var sum time.Duration
	for _, d := range e.delays {
		sum += d
	}
	injected := float64(sum) / float64(len(e.delays)) / 1e6
	if math.Abs(r.RTTAvgMs-injected) > 0.5 {
		t.Errorf("mean RTT %.3f ms, injected %.3f ms: more than 0.5 ms apart", r.RTTAvgMs, injected)
	}
	if r.RTTMinMs < 5 || r.RTTMaxMs < r.RTTP99Ms || r.RTTP50Ms < r.RTTMinMs {
		t.Errorf("inconsistent summary %+v", r)
	}
	// Jitter against the ground truth: the same statistic over the hold
	// times the server applied, in sequence order, within 0.5 ms. (Uniform
	// [0, 4 ms) holds give about 4/3 ms.)
	var seqs []int
	for sq := range e.bySeq {
		seqs = append(seqs, int(sq))
	}
	sort.Ints(seqs)
	holds := make([]float64, len(seqs))
	for i, sq := range seqs {
		holds[i] = float64(e.bySeq[uint32(sq)]) / 1e6
	}
	truth, _ := stats.Jitter(holds)
	if math.Abs(r.JitterMs-truth) > 0.5 {
		t.Errorf("jitter %.3f ms, ground truth %.3f ms", r.JitterMs, truth)
	}
	if len(r.RTTsUs) != r.Received {
		t.Errorf("%d RTTs for %d answers", len(r.RTTsUs), r.Received)
	}
	t.Logf("loss %.4f (server dropped %d), mean RTT %.3f ms vs injected %.3f ms, jitter %.3f ms vs %.3f ms, MOS %.2f",
		r.LossRatio, e.dropped, r.RTTAvgMs, injected, r.JitterMs, truth, r.MOS)
}

func TestUDPDuplicatesReorderForeign(t *testing.T) {
	e := &lossyEcho{delay: 0, jitter: 30 * time.Millisecond, dupEvery: 5, garbage: true}
	addr := startLossyEcho(t, e)
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	p := &UDP{Metrics: m}
	const n = 50
	r := p.Probe(context.Background(), Check{Type: TypeUDP, Target: addr, Count: n, Spacing: time.Millisecond, Timeout: 500 * time.Millisecond})
	if r.Received != n || r.LossRatio != 0 {
		t.Fatalf("received %d of %d", r.Received, n)
	}
	if r.Duplicates != n/5 {
		t.Errorf("duplicates %d, want %d", r.Duplicates, n/5)
	}
	// 30 ms of jitter on 1 ms spacing reorders many answers.
	if r.Reordered == 0 {
		t.Errorf("no reordering detected")
	}
	if got := testutil.ToFloat64(m.Errors().WithLabelValues(TypeUDP, "malformed_reply")); got != n {
		t.Errorf("malformed_reply = %v, want %d", got, n)
	}
}

func TestUDPForeignSession(t *testing.T) {
	// A server that answers with a valid header of another session.
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go func() {
		buf := make([]byte, 2048)
		for {
			k, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			foreign := make([]byte, k)
			EncodeUDPPayload(foreign, 42, 0, time.Now())
			c.WriteTo(foreign, from)
			c.WriteTo(buf[:k], from)
		}
	}()
	m := NewMetrics(prometheus.NewRegistry())
	r := (&UDP{Metrics: m}).Probe(context.Background(), Check{Type: TypeUDP, Target: c.LocalAddr().String(), Count: 5, Spacing: time.Millisecond, Timeout: 300 * time.Millisecond})
	if r.Received != 5 {
		t.Errorf("received %d of 5 despite foreign replies", r.Received)
	}
	if got := testutil.ToFloat64(m.Errors().WithLabelValues(TypeUDP, "foreign_reply")); got != 5 {
		t.Errorf("foreign_reply = %v, want 5", got)
	}
}

func TestUDPResponderAndUnreachable(t *testing.T) {
	resp, err := ListenResponder("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go resp.Serve(ctx)
	r := (&UDP{}).Probe(ctx, Check{Type: TypeUDP, Target: resp.Addr().String(), Count: 20, Spacing: time.Millisecond, Timeout: time.Second})
	if r.Received != 20 || r.Error != "" || r.RTTAvgMs <= 0 || r.RTTAvgMs > 50 {
		t.Errorf("responder round: %+v", r)
	}
	// Nobody listens: every packet lost, a reason, no hang.
	l, _ := net.ListenPacket("udp", "127.0.0.1:0")
	dead := l.LocalAddr().String()
	l.Close()
	m := NewMetrics(prometheus.NewRegistry())
	r = (&UDP{Metrics: m}).Probe(ctx, Check{Type: TypeUDP, Target: dead, Count: 3, Spacing: time.Millisecond, Timeout: 200 * time.Millisecond})
	if r.Received != 0 || r.LossRatio != 1 || r.Error == "" || r.MOS != 1 {
		t.Errorf("dead target: %+v", r)
	}
	r = (&UDP{Metrics: m}).Probe(ctx, Check{Type: TypeUDP, Target: "no-such-host.invalid:7", Count: 3, Timeout: 200 * time.Millisecond})
	if r.Received != 0 || r.Error == "" {
		t.Errorf("bad host: %+v", r)
	}
}
