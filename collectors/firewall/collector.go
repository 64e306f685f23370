// Package firewall receives firewall logs over syslog (UDP, TCP, TLS; RFC
// 3164 and RFC 5424; octet-counting and newline framing) and normalises
// iptables/nftables, PAN-OS, Cisco ASA and FortiGate lines into
// record.FirewallEvent rows. Lines no parser knows are stored raw.
package firewall

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meridian-obs/meridian/pipeline/record"
)

// Deps of the collector.
type Deps struct {
	Log      *slog.Logger
	Registry prometheus.Registerer
	Sink     record.Sink[record.FirewallEvent]
}

// Collector is the syslog listener component.
type Collector struct {
	cfg     Config
	log     *slog.Logger
	sink    record.Sink[record.FirewallEvent]
	parser  *Parser
	m       *metrics
	devices map[string]Location
	nets    PrefixTable

	ctx    context.Context // lives until Stop finished flushing
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	udp    []*net.UDPConn
	tcp    net.Listener
	tls    net.Listener
	conns  map[net.Conn]struct{}
	inodes map[uint64]bool // of the UDP sockets, for kernel drop counts
	closed bool
}

// New builds the collector; it does no I/O.
func New(cfg Config, deps Deps) (*Collector, error) {
	if deps.Sink == nil && cfg.Enabled() {
		return nil, errors.New("firewall: no sink")
	}
	log := deps.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(deps.Registry)
	if err != nil {
		return nil, fmt.Errorf("firewall: metrics: %w", err)
	}
	c := &Collector{
		cfg: cfg, log: log.With("component", "firewall"), sink: deps.Sink, m: m,
		parser:  NewParser(cfg.NetfilterPrefixes),
		devices: map[string]Location{},
		conns:   map[net.Conn]struct{}{},
		inodes:  map[uint64]bool{},
	}
	if deps.Registry != nil {
		err := deps.Registry.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "meridian_firewall_udp_kernel_drops_total",
			Help: "Syslog datagrams the kernel dropped because a UDP socket's receive buffer was full (from /proc/net/udp).",
		}, func() float64 {
			c.mu.Lock()
			defer c.mu.Unlock()
			return kernelDrops(c.inodes)
		}))
		if err != nil {
			return nil, fmt.Errorf("firewall: metrics: %w", err)
		}
	}
	for _, d := range cfg.Devices {
		c.devices[d.Name] = Location{Region: d.Region, Site: d.Site}
	}
	for _, n := range cfg.Networks {
		p, err := netip.ParsePrefix(n.CIDR)
		if err != nil {
			return nil, fmt.Errorf("firewall: networks: %w", err)
		}
		c.nets.Add(p, Location{Region: n.Region, Site: n.Site})
	}
	return c, nil
}

// Start opens the configured listeners.
func (c *Collector) Start(context.Context) error {
	c.ctx, c.cancel = context.WithCancel(context.Background())
	if !c.cfg.Enabled() {
		return nil
	}
	sc := c.cfg.Syslog
	var tlsConf *tls.Config
	if sc.TLS.Listen != "" {
		cert, err := loadKeyPair(sc.TLS)
		if err != nil {
			return fmt.Errorf("firewall: syslog.tls: %w", err)
		}
		tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	fail := func(err error) error {
		_ = c.Stop(context.Background())
		return err
	}
	if sc.UDP != "" {
		addr := sc.UDP
		for i := 0; i < max(1, sc.UDPReaders); i++ {
			lc := net.ListenConfig{}
			if sc.UDPReaders > 1 {
				lc.Control = reusePort
			}
			pc, err := lc.ListenPacket(context.Background(), "udp", addr)
			if err != nil {
				return fail(fmt.Errorf("firewall: syslog.udp: %w", err))
			}
			conn := pc.(*net.UDPConn)
			if sc.UDPReadBufferBytes > 0 {
				_ = conn.SetReadBuffer(sc.UDPReadBufferBytes)
			}
			addr = conn.LocalAddr().String() // the others bind the same port, even when it was 0
			c.mu.Lock()
			if ino, ok := socketInode(conn); ok {
				c.inodes[ino] = true
			}
			c.udp = append(c.udp, conn)
			c.mu.Unlock()
			c.wg.Add(1)
			go c.readUDP(conn)
		}
	}
	if sc.TCP != "" {
		l, err := net.Listen("tcp", sc.TCP)
		if err != nil {
			return fail(fmt.Errorf("firewall: syslog.tcp: %w", err))
		}
		c.tcp = l
		c.wg.Add(1)
		go c.accept(l, nil)
	}
	if tlsConf != nil {
		l, err := net.Listen("tcp", sc.TLS.Listen)
		if err != nil {
			return fail(fmt.Errorf("firewall: syslog.tls.listen: %w", err))
		}
		c.tls = l
		c.wg.Add(1)
		go c.accept(l, tlsConf)
	}
	c.log.Info("syslog listening", "udp", c.UDPAddr(), "tcp", c.TCPAddr(), "tls", c.TLSAddr())
	return nil
}

// Stop closes the listeners and connections and flushes every batch.
func (c *Collector) Stop(ctx context.Context) error {
	c.mu.Lock()
	c.closed = true
	for _, u := range c.udp {
		u.Close()
	}
	for _, l := range []net.Listener{c.tcp, c.tls} {
		if l != nil {
			l.Close()
		}
	}
	for conn := range c.conns {
		conn.Close()
	}
	c.mu.Unlock()
	done := make(chan struct{})
	go func() { c.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("firewall: stop: %w", ctx.Err())
		if c.cancel != nil {
			c.cancel() // unblock flushes waiting on the pipeline
		}
		<-done
	}
	if c.cancel != nil {
		c.cancel()
	}
	return err
}

// UDPAddr is the bound UDP address ("" when off).
func (c *Collector) UDPAddr() string {
	if len(c.udp) == 0 {
		return ""
	}
	return c.udp[0].LocalAddr().String()
}

// TCPAddr is the bound TCP address ("" when off).
func (c *Collector) TCPAddr() string {
	if c.tcp == nil {
		return ""
	}
	return c.tcp.Addr().String()
}

// TLSAddr is the bound TLS address ("" when off).
func (c *Collector) TLSAddr() string {
	if c.tls == nil {
		return ""
	}
	return c.tls.Addr().String()
}

// batch collects the rows of one reader between flushes.
type batch struct {
	c     *Collector
	rows  []record.FirewallEvent
	arena arena
	first time.Time
}

// add parses one frame from source (the sender's address, used as device
// when the line names none).
func (b *batch) add(frame []byte, source string, srcAddr netip.Addr, now time.Time) {
	c := b.c
	if len(frame) == 0 {
		c.m.bad(source, ReasonEmpty)
		return
	}
	if len(b.rows) == 0 {
		b.first = now
	}
	line := b.arena.str(frame)
	b.rows = append(b.rows, record.FirewallEvent{})
	ev := &b.rows[len(b.rows)-1]
	reason := c.parser.Parse(line, now, ev)
	ev.ReceivedAt = now
	if ev.Device == "" {
		ev.Device = source
	}
	if loc, ok := c.devices[ev.Device]; ok {
		ev.Region, ev.Site = loc.Region, loc.Site
	} else if loc, ok := c.nets.Lookup(srcAddr); ok {
		ev.Region, ev.Site = loc.Region, loc.Site
	}
	c.m.line(ev.Format)
	if reason != "" {
		src := ev.Device
		c.m.bad(src, reason)
	}
}

func (b *batch) flush() {
	if len(b.rows) == 0 {
		return
	}
	c := b.c
	if err := c.sink.Write(c.ctx, b.rows); err != nil {
		c.m.dropped.WithLabelValues(ReasonSinkFailed).Add(float64(len(b.rows)))
		c.log.Warn("pipeline refused firewall events", "rows", len(b.rows), "err", err)
	} else {
		c.m.batches.Inc()
	}
	clear(b.rows)
	b.rows = b.rows[:0]
}

// sourceCache remembers the string form of sender addresses.
type sourceCache map[netip.Addr]string

func (s sourceCache) get(a netip.Addr) string {
	if v, ok := s[a]; ok {
		return v
	}
	if len(s) > 4096 {
		clear(s)
	}
	v := a.String()
	s[a] = v
	return v
}

func (c *Collector) readUDP(conn *net.UDPConn) {
	defer c.wg.Done()
	b := &batch{c: c, rows: make([]record.FirewallEvent, 0, c.cfg.Syslog.BatchRows)}
	defer b.flush()
	buf := make([]byte, 65536)
	names := sourceCache{}
	deadline := false
	for {
		if len(b.rows) > 0 {
			_ = conn.SetReadDeadline(b.first.Add(c.cfg.Syslog.BatchWindow))
			deadline = true
		} else if deadline {
			_ = conn.SetReadDeadline(time.Time{})
			deadline = false
		}
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				b.flush()
				continue
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			c.log.Warn("udp read", "err", err)
			continue
		}
		now := time.Now().UTC()
		addr := from.Addr().Unmap()
		source := names.get(addr)
		// One message per datagram (RFC 5426); some senders put several
		// lines in one, so split on newlines.
		data := buf[:n]
		for len(data) > 0 {
			line := data
			if i := bytes.IndexByte(data, '\n'); i >= 0 {
				line, data = data[:i], data[i+1:]
			} else {
				data = nil
			}
			line = trimEOL(line)
			if len(line) == 0 {
				continue
			}
			if len(line) > c.cfg.Syslog.MaxLineBytes {
				c.m.bad(source, ReasonTooLong)
				continue
			}
			b.add(line, source, addr, now)
		}
		if len(b.rows) >= c.cfg.Syslog.BatchRows {
			b.flush()
		}
	}
}

func (c *Collector) accept(l net.Listener, tlsConf *tls.Config) {
	defer c.wg.Done()
	for {
		conn, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			c.log.Warn("accept", "err", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		addr := netip.Addr{}
		if ta, ok := conn.RemoteAddr().(*net.TCPAddr); ok {
			addr = ta.AddrPort().Addr().Unmap()
		}
		c.mu.Lock()
		if c.closed || len(c.conns) >= c.cfg.Syslog.MaxConnections {
			closed := c.closed
			c.mu.Unlock()
			conn.Close()
			if !closed {
				c.m.bad(addr.String(), ReasonTooMany)
			}
			continue
		}
		if tlsConf != nil {
			conn = tls.Server(conn, tlsConf)
		}
		c.conns[conn] = struct{}{}
		c.m.connections.Inc()
		c.wg.Add(1)
		c.mu.Unlock()
		go c.serve(conn, addr)
	}
}

func (c *Collector) serve(conn net.Conn, addr netip.Addr) {
	defer c.wg.Done()
	defer func() {
		c.mu.Lock()
		delete(c.conns, conn)
		c.mu.Unlock()
		conn.Close()
		c.m.connections.Dec()
	}()
	source := addr.String()
	if tc, ok := conn.(*tls.Conn); ok {
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
		if err := tc.Handshake(); err != nil {
			c.m.bad(source, ReasonTLS)
			c.log.Debug("tls handshake", "source", source, "err", err)
			return
		}
		_ = conn.SetDeadline(time.Time{})
	}
	b := &batch{c: c, rows: make([]record.FirewallEvent, 0, 64)}
	defer b.flush()
	fr := newFrameReader(conn, c.cfg.Syslog.MaxLineBytes)
	for {
		if !fr.buffered() {
			// About to block: hand over what we have first.
			b.flush()
			_ = conn.SetReadDeadline(time.Now().Add(c.cfg.Syslog.IdleTimeout))
		}
		frame, reason, err := fr.next()
		if err != nil {
			switch {
			case err == io.EOF, errors.Is(err, net.ErrClosed):
			case err == errBadFrame:
				c.m.bad(source, ReasonBadFrame)
			case err == io.ErrUnexpectedEOF:
				c.m.bad(source, ReasonTruncated)
			default:
				var ne net.Error
				if !(errors.As(err, &ne) && ne.Timeout()) {
					c.log.Debug("syslog connection", "source", source, "err", err)
				}
			}
			return
		}
		if reason != "" {
			c.m.bad(source, reason)
			continue
		}
		b.add(frame, source, addr, time.Now().UTC())
		if len(b.rows) >= c.cfg.Syslog.BatchRows {
			b.flush()
		}
	}
}
