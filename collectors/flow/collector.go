package flow

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/meridian-obs/meridian/pipeline/record"
)

// Deps of the collector.
type Deps struct {
	Log      *slog.Logger
	Registry prometheus.Registerer
	// Sink receives the flows (pipeline.Pipeline.Flows()).
	Sink record.Sink[record.Flow]
}

// Collector is the flow collector component.
type Collector struct {
	cfg  Config
	log  *slog.Logger
	m    *metrics
	dec  *Decoder
	sink record.Sink[record.Flow]

	mu       sync.Mutex
	conns    []*net.UDPConn
	wg       sync.WaitGroup
	writeCtx context.Context
	cancel   context.CancelFunc

	netflowAddr, sflowAddr netip.AddrPort
	stopping               atomic.Bool
}

// drainTime bounds how long Stop lets readers empty their sockets.
const drainTime = 250 * time.Millisecond

// New builds the collector; it does no I/O.
func New(cfg Config, deps Deps) (*Collector, error) {
	if deps.Sink == nil {
		return nil, errors.New("flow: no sink")
	}
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	m := newMetrics()
	if deps.Registry != nil {
		if err := m.register(deps.Registry); err != nil {
			return nil, err
		}
	}
	return &Collector{cfg: cfg, log: deps.Log.With("component", "flow"), m: m, dec: newDecoder(cfg, m), sink: deps.Sink}, nil
}

// NetFlowAddr is the bound NetFlow/IPFIX address (after Start; useful with port 0).
func (c *Collector) NetFlowAddr() netip.AddrPort { return c.netflowAddr }

// SFlowAddr is the bound sFlow address (after Start).
func (c *Collector) SFlowAddr() netip.AddrPort { return c.sflowAddr }

// Start binds the listeners (Readers sockets each, SO_REUSEPORT) and starts
// one reader goroutine per socket.
func (c *Collector) Start(context.Context) error {
	c.writeCtx, c.cancel = context.WithCancel(context.Background())
	type lst struct {
		name, addr string
		decode     func([]byte, netip.Addr, time.Time, []record.Flow) []record.Flow
		bound      *netip.AddrPort
	}
	for _, l := range []lst{
		{"netflow", c.cfg.NetFlowListen, c.dec.DecodeNetFlow, &c.netflowAddr},
		{"sflow", c.cfg.SFlowListen, c.dec.DecodeSFlow, &c.sflowAddr},
	} {
		if l.addr == "" {
			continue
		}
		addr := l.addr
		for i := 0; i < c.cfg.Readers; i++ {
			conn, granted, err := listenUDP(addr, c.cfg.RcvBuf)
			if err != nil {
				c.closeAll()
				return fmt.Errorf("flow: listen %s on %s: %w", l.name, l.addr, err)
			}
			if i == 0 {
				*l.bound = conn.LocalAddr().(*net.UDPAddr).AddrPort()
				addr = l.bound.String() // the other readers share the port chosen
				c.m.rcvbuf.WithLabelValues(l.name).Set(float64(granted))
				if granted < c.cfg.RcvBuf {
					c.log.Warn("socket receive buffer smaller than configured (raise net.core.rmem_max or run with CAP_NET_ADMIN)",
						"listener", l.name, "configured", c.cfg.RcvBuf, "granted", granted)
				}
			}
			c.mu.Lock()
			c.conns = append(c.conns, conn)
			c.mu.Unlock()
			c.wg.Add(1)
			go c.read(conn, l.name, l.decode)
		}
		c.log.Info("listening", "listener", l.name, "addr", l.bound.String(), "readers", c.cfg.Readers)
	}
	return nil
}

// Stop closes the sockets, waits for the readers to hand their last flows to
// the sink, and returns. Flows still unwritten when ctx ends are counted
// as dropped.
func (c *Collector) Stop(ctx context.Context) error {
	// Drain: each reader takes what its socket already holds for a short
	// while (new reads past the deadline fail), hands it over, then closes
	// its socket.
	c.stopping.Store(true)
	c.mu.Lock()
	for _, conn := range c.conns {
		_ = conn.SetReadDeadline(time.Now().Add(drainTime))
	}
	c.conns = nil
	c.mu.Unlock()
	done := make(chan struct{})
	go func() { c.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		if c.cancel != nil {
			c.cancel() // readers blocked on a full pipeline give up; their flows are counted
		}
		<-done
	}
	if c.cancel != nil {
		c.cancel()
	}
	return nil
}

func (c *Collector) closeAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, conn := range c.conns {
		conn.Close()
	}
	c.conns = nil
}

func listenUDP(addr string, rcvbuf int) (*net.UDPConn, int, error) {
	var granted int
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); serr != nil {
				return
			}
			if rcvbuf > 0 {
				// FORCE ignores rmem_max (needs CAP_NET_ADMIN); else best effort.
				if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvbuf) != nil {
					_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf)
				}
			}
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RXQ_OVFL, 1)
			if v, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF); err == nil {
				granted = v / 2 // the kernel reports twice the usable size
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
	pc, err := lc.ListenPacket(context.Background(), "udp", addr)
	if err != nil {
		return nil, 0, err
	}
	return pc.(*net.UDPConn), granted, nil
}

// rxqOvfl returns the socket's cumulative drop counter from the control
// messages of one read (SO_RXQ_OVFL), if present.
func rxqOvfl(oob []byte) (uint32, bool) {
	for len(oob) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafePointer(oob))
		l := int(h.Len)
		if l < unix.SizeofCmsghdr || l > len(oob) {
			return 0, false
		}
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SO_RXQ_OVFL && l >= unix.SizeofCmsghdr+4 {
			return binary.NativeEndian.Uint32(oob[unix.SizeofCmsghdr:]), true
		}
		l = (l + 7) &^ 7
		if l > len(oob) {
			break
		}
		oob = oob[l:]
	}
	return 0, false
}

// socketDrops reads the socket's cumulative drop counter now
// (SO_MEMINFO, SK_MEMINFO_DROPS): SO_RXQ_OVFL only reports it on the
// datagrams queued after the drops, which a backlogged reader sees late.
func socketDrops(conn *net.UDPConn) (uint32, bool) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return 0, false
	}
	var (
		mem [16]uint32
		ok  bool
	)
	_ = rc.Control(func(fd uintptr) {
		l := uint32(unsafe.Sizeof(mem))
		_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, fd, unix.SOL_SOCKET, unix.SO_MEMINFO,
			uintptr(unsafe.Pointer(&mem[0])), uintptr(unsafe.Pointer(&l)), 0)
		ok = e == 0 && l > unix.SK_MEMINFO_DROPS*4
	})
	return mem[unix.SK_MEMINFO_DROPS], ok
}

func (c *Collector) read(conn *net.UDPConn, name string, decode func([]byte, netip.Addr, time.Time, []record.Flow) []record.Flow) {
	defer c.wg.Done()
	buf := make([]byte, 65536)
	oob := make([]byte, 128)
	batch := make([]record.Flow, 0, c.cfg.BatchFlows+1024)
	drops := c.m.socketDrops.WithLabelValues(name)
	var lastDrops uint32
	// Both sources read the same cumulative counter (sk_drops).
	seen := func(d uint32) {
		if d > lastDrops {
			drops.Add(float64(d - lastDrops))
			lastDrops = d
		}
	}
	flush := func() {
		if d, ok := socketDrops(conn); ok {
			seen(d)
		}
		if len(batch) == 0 {
			return
		}
		if err := c.sink.Write(c.writeCtx, batch); err != nil {
			c.m.dropped.WithLabelValues(reasonSink).Add(float64(len(batch)))
			c.log.Warn("pipeline refused flows", "flows", len(batch), "err", err)
		}
		batch = batch[:0]
	}
	defer func() {
		flush()
		if d, ok := socketDrops(conn); ok {
			seen(d)
		}
		// What is still queued when the drain time is over would vanish
		// with the socket: take it out and count it.
		var discarded int
		for end := time.Now().Add(time.Second); time.Now().Before(end); {
			_ = conn.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			if _, _, _, _, err := conn.ReadMsgUDPAddrPort(buf, oob); err != nil {
				break
			}
			discarded++
		}
		if discarded > 0 {
			c.m.discarded.WithLabelValues(name, "shutdown").Add(float64(discarded))
			c.log.Warn("datagrams left in the socket at stop were discarded", "listener", name, "datagrams", discarded)
		}
		conn.Close()
	}()
	deadline := time.Now().Add(c.cfg.FlushInterval)
	_ = conn.SetReadDeadline(deadline)
	for {
		n, oobn, _, from, err := conn.ReadMsgUDPAddrPort(buf, oob)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if c.stopping.Load() {
					return
				}
				flush()
				deadline = time.Now().Add(c.cfg.FlushInterval)
				if !c.stopping.Load() {
					_ = conn.SetReadDeadline(deadline)
				}
				continue
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			c.log.Warn("read", "listener", name, "err", err)
			continue
		}
		if d, ok := rxqOvfl(oob[:oobn]); ok {
			seen(d)
		}
		now := time.Now()
		batch = decode(buf[:n], from.Addr(), now.UTC(), batch)
		if len(batch) >= c.cfg.BatchFlows || now.After(deadline) {
			flush()
			deadline = now.Add(c.cfg.FlushInterval)
			if !c.stopping.Load() {
				_ = conn.SetReadDeadline(deadline)
			}
		}
	}
}
