// Package gameday simulates a three-region network on one machine and runs
// game-day drills against it: a fault (loss, latency or a full outage) is
// injected into one region's targets, the drill watches Meridian detect it
// (SLO alert), act (runbook actions on DNS and BGP) and recover (alert
// resolved, restore done), and stores the timeline in ClickHouse.
//
// Every address is on loopback: region eu is 127.0.1.0/24, us 127.0.2.0/24,
// ap 127.0.3.0/24. Faults are injected in the region's own responders and
// HTTP targets (they drop or delay what they answer), so the network is left
// exactly as it was when a fault is removed.
package gameday

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Fault is what a region suffers. The zero value is healthy.
type Fault struct {
	// Loss is the probability (0..1) that a packet or request is dropped.
	Loss float64 `json:"loss"`
	// Latency is added to every answer.
	Latency time.Duration `json:"latency"`
	// Outage drops everything (as Loss 1) and makes HTTP targets fail.
	Outage bool `json:"outage"`
}

// Healthy reports whether f is no fault.
func (f Fault) Healthy() bool { return !f.Outage && f.Loss <= 0 && f.Latency <= 0 }

func (f Fault) String() string {
	switch {
	case f.Outage:
		return "outage"
	case f.Healthy():
		return "none"
	}
	var parts []string
	if f.Loss > 0 {
		parts = append(parts, "loss:"+strconv.FormatFloat(math.Round(f.Loss*1e8)/1e6, 'g', -1, 64)+"%")
	}
	if f.Latency > 0 {
		parts = append(parts, "latency:"+f.Latency.String())
	}
	return strings.Join(parts, ",")
}

// ParseFault reads "outage", "loss:30%" (or "loss:0.3"), "latency:200ms",
// or a comma-separated combination of loss and latency.
func ParseFault(s string) (Fault, error) {
	var f Fault
	if strings.TrimSpace(s) == "" {
		return f, errors.New("empty fault: expected outage, loss:PCT or latency:DURATION")
	}
	for _, part := range strings.Split(s, ",") {
		kind, val, _ := strings.Cut(strings.TrimSpace(part), ":")
		switch kind {
		case "outage":
			if val != "" {
				return f, fmt.Errorf("outage takes no value, got %q", val)
			}
			f.Outage = true
		case "loss":
			pct := strings.HasSuffix(val, "%")
			v, err := strconv.ParseFloat(strings.TrimSuffix(val, "%"), 64)
			if err != nil {
				return f, fmt.Errorf("loss: expected a percentage such as 30%%, got %q", val)
			}
			if pct || v > 1 {
				v /= 100
			}
			if v <= 0 || v > 1 {
				return f, fmt.Errorf("loss: expected more than 0%% and at most 100%%, got %q", val)
			}
			f.Loss = v
		case "latency":
			d, err := time.ParseDuration(val)
			if err != nil || d <= 0 || d > time.Minute {
				return f, fmt.Errorf("latency: expected a duration up to 1m such as 200ms, got %q", val)
			}
			f.Latency = d
		default:
			return f, fmt.Errorf("unknown fault %q: expected outage, loss:PCT or latency:DURATION", kind)
		}
	}
	if f.Outage && (f.Loss > 0 || f.Latency > 0) {
		return f, errors.New("outage cannot be combined with loss or latency")
	}
	return f, nil
}

// Region is one simulated region: a UDP echo responder and an HTTP target on
// the region's loopback address, both obeying the region's fault.
type Region struct {
	Name string
	// Addr is the region's target address, 127.0.N.1.
	Addr string
	// Index is N (1 for the first region).
	Index int

	fault atomic.Pointer[Fault]

	udp  net.PacketConn
	http *http.Server
	hl   net.Listener

	answered, dropped atomic.Uint64

	wg     sync.WaitGroup
	cancel context.CancelFunc
}

// RegionNames are the simulated regions, in order.
var RegionNames = []string{"eu", "us", "ap"}

func newRegion(i int, name string) *Region {
	r := &Region{Name: name, Index: i, Addr: fmt.Sprintf("127.0.%d.1", i)}
	r.fault.Store(&Fault{})
	return r
}

// Fault returns the region's current fault.
func (r *Region) Fault() Fault { return *r.fault.Load() }

// SetFault changes the region's fault at once.
func (r *Region) SetFault(f Fault) { r.fault.Store(&f) }

// UDPAddr is the echo responder's address.
func (r *Region) UDPAddr() string { return r.udp.LocalAddr().String() }

// HTTPURL is the HTTP target's URL.
func (r *Region) HTTPURL() string { return "http://" + r.hl.Addr().String() + "/" }

// Counts returns the packets answered and dropped by the responder.
func (r *Region) Counts() (answered, dropped uint64) { return r.answered.Load(), r.dropped.Load() }

func (r *Region) drop(f Fault) bool {
	return f.Outage || (f.Loss > 0 && rand.Float64() < f.Loss)
}

// start listens on the region's address (port 0: any free port).
func (r *Region) start(udpPort, httpPort int) error {
	var err error
	r.udp, err = net.ListenPacket("udp", net.JoinHostPort(r.Addr, strconv.Itoa(udpPort)))
	if err != nil {
		return fmt.Errorf("region %s: UDP responder: %w", r.Name, err)
	}
	r.hl, err = net.Listen("tcp", net.JoinHostPort(r.Addr, strconv.Itoa(httpPort)))
	if err != nil {
		r.udp.Close()
		return fmt.Errorf("region %s: HTTP target: %w", r.Name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.http = &http.Server{Handler: http.HandlerFunc(r.serveHTTP), ReadHeaderTimeout: 5 * time.Second}
	r.wg.Add(2)
	go func() { defer r.wg.Done(); _ = r.http.Serve(r.hl) }()
	go func() { defer r.wg.Done(); r.echo(ctx) }()
	return nil
}

func (r *Region) echo(ctx context.Context) {
	buf := make([]byte, 65535)
	for {
		n, from, err := r.udp.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
				return
			}
			continue
		}
		f := r.Fault()
		if r.drop(f) {
			r.dropped.Add(1)
			continue
		}
		r.answered.Add(1)
		if f.Latency <= 0 {
			_, _ = r.udp.WriteTo(buf[:n], from)
			continue
		}
		pkt := append([]byte(nil), buf[:n]...)
		time.AfterFunc(f.Latency, func() {
			if ctx.Err() == nil {
				_, _ = r.udp.WriteTo(pkt, from)
			}
		})
	}
}

func (r *Region) serveHTTP(w http.ResponseWriter, req *http.Request) {
	f := r.Fault()
	if f.Latency > 0 {
		select {
		case <-time.After(f.Latency):
		case <-req.Context().Done():
			return
		}
	}
	if r.drop(f) {
		r.dropped.Add(1)
		http.Error(w, "simulated fault in region "+r.Name, http.StatusServiceUnavailable)
		return
	}
	r.answered.Add(1)
	w.Header().Set("Content-Type", "text/plain")
	fmt.Fprintf(w, "edge %s ok\n", r.Name)
}

func (r *Region) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = r.http.Shutdown(ctx)
	_ = r.udp.Close()
	r.wg.Wait()
}
