// Package flow is the flow collector: NetFlow v5, v9 and IPFIX on one UDP
// port (the version is read from each datagram) and sFlow v5 on another,
// decoded with goflow2's decoders, mapped by our own producer straight into
// record.Flow (sampling corrected, enriched with regions, sites, roles and
// interface names) and written to the pipeline's flows sink.
package flow

import (
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"github.com/meridian-obs/meridian/internal/config"
)

// Config of the flow collector (section "flows").
type Config struct {
	// NetFlowListen receives NetFlow v5, v9 and IPFIX; empty disables it.
	NetFlowListen string `yaml:"netflow_listen"`
	// SFlowListen receives sFlow v5; empty disables it.
	SFlowListen string `yaml:"sflow_listen"`
	// Readers is the number of sockets (SO_REUSEPORT) and reader goroutines
	// per listener.
	Readers int `yaml:"readers"`
	// RcvBuf is the socket receive buffer in bytes (SO_RCVBUFFORCE when
	// permitted, else SO_RCVBUF capped by net.core.rmem_max).
	RcvBuf int `yaml:"rcvbuf"`
	// BatchFlows: a reader hands its flows to the pipeline by batches of
	// this many, and at least every FlushInterval.
	BatchFlows    int           `yaml:"batch_flows"`
	FlushInterval time.Duration `yaml:"flush_interval"`
	// Networks enrich source, destination and exporter addresses (longest
	// prefix match, IPv4 and IPv6).
	Networks []Network `yaml:"networks"`
	// Exporters: per-exporter overrides (region, site, sampling rate,
	// interface names).
	Exporters []Exporter `yaml:"exporters"`
}

// Network maps a prefix to a place.
type Network struct {
	Prefix string `yaml:"prefix"`
	Region string `yaml:"region"`
	Site   string `yaml:"site"`
	Role   string `yaml:"role"`
}

// Exporter is the configuration of one exporter, keyed by its address.
type Exporter struct {
	Addr   string `yaml:"addr"`
	Region string `yaml:"region"`
	Site   string `yaml:"site"`
	// SamplingRate, when not 0, wins over what the exporter reports.
	SamplingRate uint64 `yaml:"sampling_rate"`
	// Interfaces maps ifIndex to a name.
	Interfaces map[uint32]string `yaml:"interfaces"`
}

// DefaultConfig returns the defaults: loopback listeners on the usual ports.
func DefaultConfig() Config {
	return Config{
		NetFlowListen: "127.0.0.1:2055",
		SFlowListen:   "127.0.0.1:6343",
		Readers:       2,
		RcvBuf:        32 << 20,
		BatchFlows:    8192,
		FlushInterval: 200 * time.Millisecond,
	}
}

// Validate implements config.Validator.
func (c Config) Validate(r *config.Reporter) {
	for _, l := range []struct{ key, v string }{{"netflow_listen", c.NetFlowListen}, {"sflow_listen", c.SFlowListen}} {
		if l.v == "" {
			continue
		}
		if _, err := netip.ParseAddrPort(l.v); err != nil {
			r.Errorf(l.key, "expected an IP:port to listen on (e.g. 127.0.0.1:2055 or [::]:2055), got %q", l.v)
		}
	}
	if c.Readers < 1 || c.Readers > 64 {
		r.Errorf("readers", "expected 1 to 64, got %d", c.Readers)
	}
	if c.RcvBuf < 0 || c.RcvBuf > 1<<30 {
		r.Errorf("rcvbuf", "expected 0 to 1073741824 bytes, got %d", c.RcvBuf)
	}
	if c.BatchFlows < 1 || c.BatchFlows > 1_000_000 {
		r.Errorf("batch_flows", "expected 1 to 1000000, got %d", c.BatchFlows)
	}
	if c.FlushInterval <= 0 {
		r.Errorf("flush_interval", "expected a positive duration, got %s", c.FlushInterval)
	}
	seen := map[netip.Prefix]bool{}
	for i, n := range c.Networks {
		p, err := netip.ParsePrefix(n.Prefix)
		if err != nil {
			r.Index("networks", i).Errorf("prefix", "expected a CIDR prefix such as 10.0.0.0/8 or 2001:db8::/32, got %q", n.Prefix)
			continue
		}
		if seen[p.Masked()] {
			r.Index("networks", i).Errorf("prefix", "prefix %s listed twice", p.Masked())
		}
		seen[p.Masked()] = true
	}
	addrs := map[netip.Addr]bool{}
	for i, e := range c.Exporters {
		a, err := netip.ParseAddr(e.Addr)
		if err != nil {
			r.Index("exporters", i).Errorf("addr", "expected an IP address, got %q", e.Addr)
			continue
		}
		if addrs[a.Unmap()] {
			r.Index("exporters", i).Errorf("addr", "exporter %s listed twice", a)
		}
		addrs[a.Unmap()] = true
		if e.SamplingRate > 1<<32 {
			r.Index("exporters", i).Errorf("sampling_rate", "expected 0 (use the exporter's) to 4294967296, got %d", e.SamplingRate)
		}
		for idx, name := range e.Interfaces {
			if name == "" {
				r.Index("exporters", i).Errorf("interfaces."+strconv.FormatUint(uint64(idx), 10), "expected a name")
			}
		}
	}
}

func (e Exporter) String() string { return fmt.Sprintf("exporter %s", e.Addr) }
