package flowgen

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"
)

// refused: an ICMP port unreachable from an earlier datagram (nobody
// listening yet); UDP carries on.
func refused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

// SendConfig drives Send.
type SendConfig struct {
	Kind           string
	Addr           string // host:port of the collector
	Rate           int    // flows per second; 0 = as fast as possible
	Flows          uint64 // stop after this many flows; 0 = until Duration
	Duration       time.Duration
	FlowsPerPacket int
	SamplingRate   uint32
	// AllowNonLoopback must be set to send anywhere but 127.0.0.0/8 or ::1.
	AllowNonLoopback bool
	// TemplateEvery re-sends templates this often (NetFlow v9 / IPFIX).
	TemplateEvery time.Duration
}

// CheckAddr resolves addr (IP:port, no DNS) and refuses non-loopback
// destinations unless allowed.
func CheckAddr(addr string, allowNonLoopback bool) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return ap, fmt.Errorf("flowgen: address %q: expected IP:port: %w", addr, err)
	}
	if !ap.Addr().IsLoopback() && !allowNonLoopback {
		return ap, fmt.Errorf("flowgen: refusing to send to non-loopback %s (pass -allow-non-loopback)", ap.Addr())
	}
	return ap, nil
}

// Send sends flows until cfg.Flows or cfg.Duration is reached or ctx ends,
// paced to cfg.Rate flows per second, and returns what it sent.
func Send(ctx context.Context, cfg SendConfig) (Totals, int, error) {
	ap, err := CheckAddr(cfg.Addr, cfg.AllowNonLoopback)
	if err != nil {
		return Totals{}, 0, err
	}
	g, err := New(cfg.Kind, cfg.FlowsPerPacket)
	if err != nil {
		return Totals{}, 0, err
	}
	g.SamplingRate = cfg.SamplingRate
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(ap))
	if err != nil {
		return Totals{}, 0, err
	}
	defer conn.Close()
	if cfg.TemplateEvery <= 0 {
		cfg.TemplateEvery = time.Second
	}
	start := time.Now()
	var end time.Time
	if cfg.Duration > 0 {
		end = start.Add(cfg.Duration)
	}
	datagrams := 0
	var lastTpl time.Time
	buf := make([]byte, 0, 1500)
	for {
		now := time.Now()
		if ctx.Err() != nil || (!end.IsZero() && now.After(end)) || (cfg.Flows > 0 && g.Totals().Flows >= cfg.Flows) {
			return g.Totals(), datagrams, nil
		}
		if now.Sub(lastTpl) >= cfg.TemplateEvery {
			if tpl := g.Templates(uint32(now.Unix())); tpl != nil {
				if _, err := conn.Write(tpl); err != nil && !refused(err) {
					return g.Totals(), datagrams, err
				}
				datagrams++
			}
			lastTpl = now
		}
		if cfg.Flows > 0 {
			if left := cfg.Flows - g.Totals().Flows; left < uint64(g.FlowsPerPacket) {
				g.FlowsPerPacket = int(left)
			}
		}
		buf = g.Next(buf, uint32(now.Unix()))
		if _, err := conn.Write(buf); err != nil && !refused(err) {
			return g.Totals(), datagrams, err
		}
		datagrams++
		if cfg.Rate > 0 {
			// Pace: sleep when ahead of schedule (checked every datagram;
			// sleeps are ≥ 1 ms so bursts stay short).
			due := start.Add(time.Duration(float64(g.Totals().Flows) / float64(cfg.Rate) * float64(time.Second)))
			if d := time.Until(due); d > time.Millisecond {
				time.Sleep(d)
			}
		}
	}
}
