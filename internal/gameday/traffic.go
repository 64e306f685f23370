package gameday

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"time"

	"github.com/meridian-obs/meridian/collectors/flow/flowgen"
)

// SendSyslog sends iptables log lines over UDP to addr (Meridian's syslog
// listener) until ctx ends: every second, a few accepted and dropped
// connections per region firewall ("fw-eu", …), from the region's address.
func (n *Network) SendSyslog(ctx context.Context, addr string) {
	conns := map[string]net.Conn{}
	for _, r := range n.Regions {
		c, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(r.Addr)}, mustUDPAddr(addr))
		if err != nil {
			n.opts.Log.Warn("syslog sender", "region", r.Name, "err", err)
			continue
		}
		defer c.Close()
		conns[r.Name] = c
	}
	tk := time.NewTicker(time.Second)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
		now := time.Now().UTC().Format(time.Stamp)
		for _, r := range n.Regions {
			c := conns[r.Name]
			if c == nil {
				continue
			}
			for i := 0; i < 3; i++ {
				action, dpt := "LOG-ACCEPT", 443
				if rand.IntN(4) == 0 {
					action, dpt = "DROP-IN", 22
				}
				line := fmt.Sprintf("<4>%s fw-%s kernel: %s: IN=eth0 OUT=eth1 SRC=198.51.100.%d DST=10.%d.0.%d LEN=60 PROTO=TCP SPT=%d DPT=%d",
					now, r.Name, action, 1+rand.IntN(250), r.Index, 1+rand.IntN(250), 1024+rand.IntN(60000), dpt)
				_, _ = c.Write([]byte(line))
			}
		}
	}
}

func mustUDPAddr(s string) *net.UDPAddr {
	a, err := net.ResolveUDPAddr("udp", s)
	if err != nil {
		return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}
	}
	return a
}

// SendFlows exports IPFIX from each region's address to addr (Meridian's
// flow collector) until ctx ends: templates first and every 30 s, then one
// datagram of flows per region a second.
func (n *Network) SendFlows(ctx context.Context, addr string) {
	type exporter struct {
		c net.Conn
		g *flowgen.Generator
	}
	var ex []exporter
	for _, r := range n.Regions {
		g, err := flowgen.New(flowgen.IPFIX, 10)
		if err != nil {
			return
		}
		copy(g.Agent[:], net.ParseIP(r.Addr).To4())
		c, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(r.Addr)}, mustUDPAddr(addr))
		if err != nil {
			n.opts.Log.Warn("flow exporter", "region", r.Name, "err", err)
			continue
		}
		defer c.Close()
		ex = append(ex, exporter{c, g})
	}
	tk := time.NewTicker(time.Second)
	defer tk.Stop()
	for i := 0; ; i++ {
		now := uint32(time.Now().Unix())
		for _, e := range ex {
			if i%30 == 0 {
				_, _ = e.c.Write(e.g.Templates(now))
			}
			_, _ = e.c.Write(e.g.Next(nil, now))
		}
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
	}
}
