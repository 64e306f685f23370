// Package flowgen builds NetFlow v9, IPFIX and sFlow v5 datagrams of
// synthetic flows, for the load generator (cmd/meridian-flowgen), the
// collector's tests and its benchmarks. Every flow is deterministic, and the
// generator keeps the totals it sent so that a receiver can be checked
// exactly.
package flowgen

import (
	"encoding/binary"
	"fmt"
)

// Kinds of export.
const (
	NetFlow9 = "netflow9"
	IPFIX    = "ipfix"
	SFlow5   = "sflow5"
)

// Totals of what was generated (before sampling correction).
type Totals struct {
	Flows, Bytes, Packets uint64
}

// Generator builds datagrams. Not safe for concurrent use.
type Generator struct {
	Kind           string
	FlowsPerPacket int
	// SamplingRate is announced by an options record (NetFlow v9 / IPFIX)
	// or in each flow sample (sFlow); 0 or 1 means unsampled.
	SamplingRate uint32
	// Domain is the observation domain / source id / sub-agent id.
	Domain uint32
	// Agent is the sFlow agent IPv4 address.
	Agent [4]byte
	// Addrs, when set, chooses the source and destination addresses of
	// flow i (e.g. the demo's traffic between its regions); otherwise they
	// derive from i (10.x.y.z → 172.16-31.y.z).
	Addrs func(i uint64) (src, dst [4]byte)

	seq    uint32
	n      uint64
	totals Totals
}

// New returns a generator of kind with flowsPerPacket flows a datagram
// (0: as many as fit 1400 bytes).
func New(kind string, flowsPerPacket int) (*Generator, error) {
	g := &Generator{Kind: kind, FlowsPerPacket: flowsPerPacket, Agent: [4]byte{127, 0, 0, 1}}
	max := 0
	switch kind {
	case NetFlow9:
		max = (1400 - 20 - 4) / v9RecLen
	case IPFIX:
		max = (1400 - 16 - 4) / ipfixRecLen
	case SFlow5:
		max = (1400 - 28) / sflowSampleLen
	default:
		return nil, fmt.Errorf("flowgen: unknown kind %q (want %s, %s or %s)", kind, NetFlow9, IPFIX, SFlow5)
	}
	if g.FlowsPerPacket <= 0 || g.FlowsPerPacket > max {
		g.FlowsPerPacket = max
	}
	return g, nil
}

// Totals returns what the data datagrams built so far hold.
func (g *Generator) Totals() Totals { return g.totals }

// Template fields (type, length) of NetFlow v9 and IPFIX data records.
var (
	v9Fields    = [][2]uint16{{8, 4}, {12, 4}, {7, 2}, {11, 2}, {4, 1}, {6, 1}, {10, 4}, {14, 4}, {1, 8}, {2, 8}, {22, 4}, {21, 4}, {16, 4}, {17, 4}}
	ipfixFields = [][2]uint16{{8, 4}, {12, 4}, {7, 2}, {11, 2}, {4, 1}, {6, 1}, {10, 4}, {14, 4}, {1, 8}, {2, 8}, {152, 8}, {153, 8}, {16, 4}, {17, 4}}
)

const (
	v9RecLen       = 54
	ipfixRecLen    = 62
	sflowSampleLen = 8 + 32 + 8 + 16 + 64
	dataTemplateID = 300
	optsTemplateID = 301
)

// Flow i of the sequence: every field derives from i.
type flow struct {
	src, dst       [4]byte
	sport, dport   uint16
	proto, flags   uint8
	in, out        uint32
	bytes, packets uint64
	srcAS, dstAS   uint32
}

func flowN(i uint64) flow {
	return flow{
		src:   [4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)},
		dst:   [4]byte{172, 16 + byte(i%16), byte(i >> 8), byte(i)},
		sport: uint16(1024 + i%60000), dport: [4]uint16{443, 80, 53, 22}[i%4],
		proto: [4]uint8{6, 6, 17, 6}[i%4], flags: 0x18,
		in: uint32(1 + i%4), out: uint32(10 + i%3),
		bytes: 64 + i%1400, packets: 1 + i%10,
		srcAS: 64512, dstAS: 64513 + uint32(i%5),
	}
}

var be = binary.BigEndian

// Templates returns the datagram announcing the templates (and, with a
// sampling rate, the options template and the options record). sFlow has
// none: nil.
func (g *Generator) Templates(unixSecs uint32) []byte {
	switch g.Kind {
	case NetFlow9:
		b := g.v9Header(nil, unixSecs, 0)
		b = appendTemplateSet(b, 0, v9Fields, false)
		if g.SamplingRate > 1 {
			// Options template: scope system (1) 4 bytes; option 34 (4 bytes).
			b = be.AppendUint16(b, 1)
			b = be.AppendUint16(b, 4+6+4+4+2)
			b = be.AppendUint16(b, optsTemplateID)
			b = be.AppendUint16(b, 4) // scope length in bytes
			b = be.AppendUint16(b, 4) // options length in bytes
			b = be.AppendUint16(b, 1)
			b = be.AppendUint16(b, 4)
			b = be.AppendUint16(b, 34)
			b = be.AppendUint16(b, 4)
			b = append(b, 0, 0) // padding to 4 bytes
			b = g.appendOptionsData(b)
		}
		be.PutUint16(b[2:], uint16(countSets(b[20:])))
		return b
	case IPFIX:
		b := g.ipfixHeader(nil, unixSecs)
		b = appendTemplateSet(b, 2, ipfixFields, true)
		if g.SamplingRate > 1 {
			// Options template: scope observationDomainId (149); 305 and 306.
			b = be.AppendUint16(b, 3)
			b = be.AppendUint16(b, 4+6+12)
			b = be.AppendUint16(b, optsTemplateID)
			b = be.AppendUint16(b, 3) // field count
			b = be.AppendUint16(b, 1) // scope field count
			b = be.AppendUint16(b, 149)
			b = be.AppendUint16(b, 4)
			b = be.AppendUint16(b, 305)
			b = be.AppendUint16(b, 4)
			b = be.AppendUint16(b, 306)
			b = be.AppendUint16(b, 4)
			b = g.appendOptionsData(b)
		}
		be.PutUint16(b[2:], uint16(len(b)))
		return b
	}
	return nil
}

func (g *Generator) appendOptionsData(b []byte) []byte {
	b = be.AppendUint16(b, optsTemplateID)
	if g.Kind == NetFlow9 {
		b = be.AppendUint16(b, 4+8)
		b = be.AppendUint32(b, 0)
		return be.AppendUint32(b, g.SamplingRate)
	}
	b = be.AppendUint16(b, 4+12)
	b = be.AppendUint32(b, g.Domain)
	b = be.AppendUint32(b, 1)                   // one packet selected…
	return be.AppendUint32(b, g.SamplingRate-1) // …then rate−1 skipped
}

func countSets(b []byte) int {
	n := 0
	for len(b) >= 4 {
		l := int(be.Uint16(b[2:]))
		if l < 4 || l > len(b) {
			break
		}
		n++
		b = b[l:]
	}
	return n
}

func appendTemplateSet(b []byte, setID uint16, fields [][2]uint16, _ bool) []byte {
	b = be.AppendUint16(b, setID)
	b = be.AppendUint16(b, uint16(4+4+4*len(fields)))
	b = be.AppendUint16(b, dataTemplateID)
	b = be.AppendUint16(b, uint16(len(fields)))
	for _, f := range fields {
		b = be.AppendUint16(b, f[0])
		b = be.AppendUint16(b, f[1])
	}
	return b
}

func (g *Generator) v9Header(b []byte, unixSecs uint32, count uint16) []byte {
	b = be.AppendUint16(b, 9)
	b = be.AppendUint16(b, count)
	b = be.AppendUint32(b, 3_600_000) // uptime: one hour
	b = be.AppendUint32(b, unixSecs)
	b = be.AppendUint32(b, g.seq)
	g.seq++
	return be.AppendUint32(b, g.Domain)
}

func (g *Generator) ipfixHeader(b []byte, unixSecs uint32) []byte {
	b = be.AppendUint16(b, 10)
	b = be.AppendUint16(b, 0) // length, set at the end
	b = be.AppendUint32(b, unixSecs)
	b = be.AppendUint32(b, g.seq)
	return be.AppendUint32(b, g.Domain)
}

// Next appends the next data datagram to b[:0] and returns it.
func (g *Generator) Next(b []byte, unixSecs uint32) []byte {
	b = b[:0]
	switch g.Kind {
	case NetFlow9:
		b = g.v9Header(b, unixSecs, uint16(g.FlowsPerPacket))
		b = be.AppendUint16(b, dataTemplateID)
		b = be.AppendUint16(b, uint16(4+v9RecLen*g.FlowsPerPacket))
		for range g.FlowsPerPacket {
			f := g.take()
			b = appendCommon(b, &f)
			b = be.AppendUint32(b, 3_600_000-2000) // first switched
			b = be.AppendUint32(b, 3_600_000-1000) // last switched
			b = be.AppendUint32(b, f.srcAS)
			b = be.AppendUint32(b, f.dstAS)
		}
	case IPFIX:
		b = g.ipfixHeader(b, unixSecs)
		g.seq += uint32(g.FlowsPerPacket)
		b = be.AppendUint16(b, dataTemplateID)
		b = be.AppendUint16(b, uint16(4+ipfixRecLen*g.FlowsPerPacket))
		for range g.FlowsPerPacket {
			f := g.take()
			b = appendCommon(b, &f)
			b = be.AppendUint64(b, uint64(unixSecs)*1000-2000)
			b = be.AppendUint64(b, uint64(unixSecs)*1000-1000)
			b = be.AppendUint32(b, f.srcAS)
			b = be.AppendUint32(b, f.dstAS)
		}
		be.PutUint16(b[2:], uint16(len(b)))
	case SFlow5:
		b = be.AppendUint32(b, 5)
		b = be.AppendUint32(b, 1) // agent IPv4
		b = append(b, g.Agent[:]...)
		b = be.AppendUint32(b, g.Domain)
		b = be.AppendUint32(b, g.seq)
		g.seq++
		b = be.AppendUint32(b, 3_600_000)
		b = be.AppendUint32(b, uint32(g.FlowsPerPacket))
		rate := max(g.SamplingRate, 1)
		for range g.FlowsPerPacket {
			f := g.take()
			f.packets = 1             // a sample is one packet
			b = be.AppendUint32(b, 1) // flow sample
			b = be.AppendUint32(b, 32+8+16+64)
			b = be.AppendUint32(b, uint32(g.n))
			b = be.AppendUint32(b, f.in)
			b = be.AppendUint32(b, rate)
			b = be.AppendUint32(b, uint32(g.n)*rate)
			b = be.AppendUint32(b, 0)
			b = be.AppendUint32(b, f.in)
			b = be.AppendUint32(b, f.out)
			b = be.AppendUint32(b, 1) // one record
			b = be.AppendUint32(b, 1) // sampled header
			b = be.AppendUint32(b, 16+64)
			b = be.AppendUint32(b, 1) // ethernet
			b = be.AppendUint32(b, uint32(f.bytes))
			b = be.AppendUint32(b, 0)
			b = be.AppendUint32(b, 64)
			b = appendFrame(b, &f)
		}
	}
	return b
}

func (g *Generator) take() flow {
	f := flowN(g.n)
	if g.Addrs != nil {
		f.src, f.dst = g.Addrs(g.n)
	}
	g.n++
	g.totals.Flows++
	if g.Kind == SFlow5 {
		f.packets = 1
	}
	g.totals.Bytes += f.bytes
	g.totals.Packets += f.packets
	return f
}

func appendCommon(b []byte, f *flow) []byte {
	b = append(b, f.src[:]...)
	b = append(b, f.dst[:]...)
	b = be.AppendUint16(b, f.sport)
	b = be.AppendUint16(b, f.dport)
	b = append(b, f.proto, f.flags)
	b = be.AppendUint32(b, f.in)
	b = be.AppendUint32(b, f.out)
	b = be.AppendUint64(b, f.bytes)
	return be.AppendUint64(b, f.packets)
}

// appendFrame appends 64 bytes: Ethernet, IPv4 and the first 30 bytes of
// the TCP or UDP header.
func appendFrame(b []byte, f *flow) []byte {
	b = append(b, 2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00)
	b = append(b, 0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, f.proto, 0, 0)
	b = append(b, f.src[:]...)
	b = append(b, f.dst[:]...)
	b = be.AppendUint16(b, f.sport)
	b = be.AppendUint16(b, f.dport)
	b = append(b, 0, 0, 0, 0, 0, 0, 0, 0, 0x50, f.flags)
	return append(b, make([]byte, 64-14-20-14)...)
}
