package probes

import (
	"context"
	"net"
	"time"
)

// TCP measures the connect time (SYN → SYN-ACK, as seen by connect(2)) to
// HOST:PORT, Count attempts per round. A failed attempt counts as lost and
// its reason (refused, timeout, unreachable, dns) is counted.
type TCP struct{ Metrics *Metrics }

// Probe implements Prober.
func (p *TCP) Probe(ctx context.Context, c Check) Result {
	c = c.WithDefaults()
	start := time.Now()
	var rtts []time.Duration
	addr, lastErr := "", ""
	for i := 0; i < c.Count; i++ {
		if i > 0 && !sleepCtx(ctx, c.Spacing) {
			break
		}
		dctx, cancel := context.WithTimeout(ctx, c.Timeout)
		d := net.Dialer{}
		t0 := time.Now()
		conn, err := d.DialContext(dctx, "tcp", c.Target)
		rtt := time.Since(t0)
		cancel()
		if err != nil {
			lastErr = Reason(err)
			p.Metrics.Count(TypeTCP, lastErr, 1)
			continue
		}
		if ta, ok := conn.RemoteAddr().(*net.TCPAddr); ok {
			addr = ta.AddrPort().Addr().Unmap().String()
		}
		conn.Close()
		rtts = append(rtts, rtt)
	}
	if len(rtts) == c.Count {
		lastErr = ""
	}
	return finish(c, start, addr, c.Count, rtts, 0, 0, lastErr)
}
