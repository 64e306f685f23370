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
				line := fmt.Sprintf("<4>%s fw-%s kernel: %s: IN=eth0 OUT=eth1 SRC=198.51.100.%d DST=10.%d.%d.%d LEN=60 PROTO=TCP SPT=%d DPT=%d",
					now, r.Name, action, 1+rand.IntN(250), r.Index, 1+rand.IntN(8), 1+rand.IntN(200), 1024+rand.IntN(60000), dpt)
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
		g.Addrs = n.flowAddrs(r)
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

// Internet is the region name the simulation gives to addresses outside
// its regions (the documentation ranges its traffic uses for the
// internet), so that the dashboard's matrix shows traffic leaving the
// network as a place of its own.
const Internet = "internet"

// internetPrefixes are the documentation ranges (RFC 5737) the simulated
// traffic uses for hosts on the internet.
var internetPrefixes = []string{"198.51.100.0/24", "203.0.113.0/24"}

// flowAddrs returns the address chooser of region r's exporter: flow i
// goes, in a repeating pattern of ten, five times from r to another region
// (each in turn), twice inside r, and three times between r and the
// internet (two out, one in). Region addresses are 10.N.x.y, inside the
// region's announced prefix 10.N.0.0/16.
func (n *Network) flowAddrs(r *Region) func(i uint64) (src, dst [4]byte) {
	var others []*Region
	for _, o := range n.Regions {
		if o != r {
			others = append(others, o)
		}
	}
	host := func(idx int, i uint64) [4]byte {
		return [4]byte{10, byte(idx), byte(1 + i%8), byte(1 + (i/8)%200)}
	}
	inet := func(i uint64) [4]byte {
		if i%2 == 0 {
			return [4]byte{198, 51, 100, byte(1 + i%250)}
		}
		return [4]byte{203, 0, 113, byte(1 + i%250)}
	}
	return func(i uint64) (src, dst [4]byte) {
		switch k := i % 10; {
		case k < 5 && len(others) > 0:
			o := others[int(i/10+k)%len(others)]
			return host(r.Index, i), host(o.Index, i/3)
		case k < 7:
			return host(r.Index, i), host(r.Index, i/5+1)
		case k < 9:
			return host(r.Index, i), inet(i)
		default:
			return inet(i), host(r.Index, i)
		}
	}
}

// FlowNetworks is the flows section's networks list: each region's prefix
// and the internet ranges, so that flows are enriched with their regions.
func (n *Network) FlowNetworks() []map[string]any {
	var out []map[string]any
	for _, r := range n.Regions {
		out = append(out, map[string]any{"prefix": n.Prefixes[r.Name], "region": r.Name, "site": r.Name + "-1", "role": "internal"})
	}
	for _, p := range internetPrefixes {
		out = append(out, map[string]any{"prefix": p, "region": Internet, "role": "external"})
	}
	return out
}

// FlowExporters is the flows section's exporters list: each region's
// exporter address with its region and site.
func (n *Network) FlowExporters() []map[string]any {
	var out []map[string]any
	for _, r := range n.Regions {
		out = append(out, map[string]any{"addr": r.Addr, "region": r.Name, "site": r.Name + "-1"})
	}
	return out
}

// FirewallDevices is the firewall section's devices list: each region's
// firewall (fw-eu, …) with its region and site.
func (n *Network) FirewallDevices() []map[string]any {
	var out []map[string]any
	for _, r := range n.Regions {
		out = append(out, map[string]any{"name": "fw-" + r.Name, "region": r.Name, "site": r.Name + "-1"})
	}
	return out
}

// FirewallNetworks locates the region firewalls by the address they send
// syslog from (127.0.N.1).
func (n *Network) FirewallNetworks() []map[string]any {
	var out []map[string]any
	for _, r := range n.Regions {
		out = append(out, map[string]any{"cidr": r.Addr + "/32", "region": r.Name, "site": r.Name + "-1"})
	}
	return out
}
