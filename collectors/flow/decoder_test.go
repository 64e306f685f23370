package flow

import (
	"encoding/binary"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/meridian-obs/meridian/collectors/flow/flowgen"
	"github.com/meridian-obs/meridian/pipeline/record"
)

var exporterAddr = netip.MustParseAddr("127.0.0.9")

func testDecoder(cfg Config) (*Decoder, *metrics) {
	m := newMetrics()
	return newDecoder(cfg, m), m
}

func testNetworks() Config {
	cfg := DefaultConfig()
	cfg.Networks = []Network{
		{Prefix: "10.0.0.0/8", Region: "eu-west", Site: "par1", Role: "office"},
		{Prefix: "10.0.1.0/24", Region: "eu-west", Site: "par2", Role: "dc"},
		{Prefix: "172.16.0.0/12", Region: "us-east", Site: "nyc1", Role: "dc"},
		{Prefix: "2001:db8::/32", Region: "ap-south", Site: "sin1", Role: "cloud"},
		{Prefix: "127.0.0.0/8", Region: "lab", Site: "loopback", Role: "exporter"},
	}
	cfg.Exporters = []Exporter{{Addr: "127.0.0.9", Site: "edge9", Interfaces: map[uint32]string{1: "xe-0/0/1", 10: "ae0"}}}
	return cfg
}

func sum(flows []record.Flow) (b, p uint64) {
	for _, f := range flows {
		b += f.Bytes
		p += f.Packets
	}
	return
}

func TestDecodeGenerated(t *testing.T) {
	now := time.Unix(1_800_000_000, 0).UTC()
	for _, tc := range []struct {
		kind string
		rate uint32
		ft   string
	}{
		{flowgen.NetFlow9, 0, typeNetFlow9},
		{flowgen.NetFlow9, 100, typeNetFlow9},
		{flowgen.IPFIX, 0, typeIPFIX},
		{flowgen.IPFIX, 64, typeIPFIX},
		{flowgen.SFlow5, 0, typeSFlow5},
		{flowgen.SFlow5, 512, typeSFlow5},
	} {
		t.Run(tc.kind+"/"+string(rune('0'+tc.rate%10)), func(t *testing.T) {
			d, m := testDecoder(testNetworks())
			g, err := flowgen.New(tc.kind, 0)
			if err != nil {
				t.Fatal(err)
			}
			g.SamplingRate = tc.rate
			g.Agent = [4]byte{127, 0, 0, 9}
			var out []record.Flow
			if tp := g.Templates(uint32(now.Unix())); tp != nil {
				if out = d.DecodeNetFlow(tp, exporterAddr, now, out); len(out) != 0 {
					t.Fatalf("template datagram gave %d flows", len(out))
				}
			}
			var buf []byte
			for range 5 {
				buf = g.Next(buf, uint32(now.Unix()))
				if tc.kind == flowgen.SFlow5 {
					out = d.DecodeSFlow(buf, exporterAddr, now, out)
				} else {
					out = d.DecodeNetFlow(buf, exporterAddr, now, out)
				}
			}
			tot := g.Totals()
			rate := uint64(max(tc.rate, 1))
			if uint64(len(out)) != tot.Flows {
				t.Fatalf("flows: got %d, want %d", len(out), tot.Flows)
			}
			b, p := sum(out)
			if b != tot.Bytes*rate || p != tot.Packets*rate {
				t.Errorf("bytes, packets: got %d, %d; want %d, %d", b, p, tot.Bytes*rate, tot.Packets*rate)
			}
			f := out[1]
			want := record.Flow{
				TimeReceived: now, FlowType: tc.ft, ExporterAddr: exporterAddr, ExporterRegion: "lab", ExporterSite: "edge9",
				SamplingRate: rate, InIf: 2, OutIf: 11, InIfName: "", OutIfName: "",
				SrcAddr: netip.MustParseAddr("10.0.0.1"), DstAddr: netip.MustParseAddr("172.17.0.1"),
				SrcPort: 1025, DstPort: 80, Proto: 6, TCPFlags: 0x18, EType: 0x0800, SrcAS: 64512, DstAS: 64514,
				SrcRegion: "eu-west", DstRegion: "us-east", SrcSite: "par1", DstSite: "nyc1", SrcRole: "office", DstRole: "dc",
				Bytes: 65 * rate, Packets: 2 * rate,
			}
			switch tc.kind {
			case flowgen.NetFlow9, flowgen.IPFIX:
				want.TimeStart, want.TimeEnd = now.Add(-2*time.Second), now.Add(-time.Second)
			case flowgen.SFlow5:
				want.TimeStart, want.TimeEnd = now, now
				want.Packets = rate
				want.SrcAS, want.DstAS = 0, 0
			}
			if f != want {
				t.Errorf("flow 1:\n got %+v\nwant %+v", f, want)
			}
			if out[0].InIfName != "xe-0/0/1" || out[0].OutIfName != "ae0" {
				t.Errorf("interface names of flow 0: %q %q", out[0].InIfName, out[0].OutIfName)
			}
			if got := testutil.ToFloat64(m.flows.WithLabelValues("127.0.0.9", tc.ft)); got != float64(tot.Flows) {
				t.Errorf("flows metric %v, want %d", got, tot.Flows)
			}
			if n := testutil.CollectAndCount(m.errors); n != 0 {
				t.Errorf("%d error series, want none", n)
			}
		})
	}
}

func TestNoTemplateCountedThenDecoded(t *testing.T) {
	now := time.Now().UTC()
	for _, kind := range []string{flowgen.NetFlow9, flowgen.IPFIX} {
		t.Run(kind, func(t *testing.T) {
			d, m := testDecoder(DefaultConfig())
			g, _ := flowgen.New(kind, 10)
			data := g.Next(nil, uint32(now.Unix()))
			if out := d.DecodeNetFlow(data, exporterAddr, now, nil); len(out) != 0 {
				t.Fatalf("decoded %d flows without a template", len(out))
			}
			if got := testutil.ToFloat64(m.errors.WithLabelValues("127.0.0.9", reasonNoTemplate)); got != 1 {
				t.Fatalf("no_template = %v, want 1", got)
			}
			// Templates are per exporter: another exporter's template does not help.
			d.DecodeNetFlow(g.Templates(uint32(now.Unix())), netip.MustParseAddr("127.0.0.10"), now, nil)
			if out := d.DecodeNetFlow(data, exporterAddr, now, nil); len(out) != 0 {
				t.Fatalf("decoded with another exporter's template")
			}
			d.DecodeNetFlow(g.Templates(uint32(now.Unix())), exporterAddr, now, nil)
			if out := d.DecodeNetFlow(data, exporterAddr, now, nil); len(out) != 10 {
				t.Fatalf("after the template: %d flows, want 10", len(out))
			}
		})
	}
}

func TestSamplingOverride(t *testing.T) {
	now := time.Now().UTC()
	cfg := DefaultConfig()
	cfg.Exporters = []Exporter{{Addr: "127.0.0.9", SamplingRate: 1000}}
	d, _ := testDecoder(cfg)
	g, _ := flowgen.New(flowgen.IPFIX, 3)
	g.SamplingRate = 10
	d.DecodeNetFlow(g.Templates(uint32(now.Unix())), exporterAddr, now, nil)
	out := d.DecodeNetFlow(g.Next(nil, uint32(now.Unix())), exporterAddr, now, nil)
	b, p := sum(out)
	tot := g.Totals()
	if len(out) != 3 || out[0].SamplingRate != 1000 || b != tot.Bytes*1000 || p != tot.Packets*1000 {
		t.Fatalf("override: %d flows, rate %d, bytes %d (want %d)", len(out), out[0].SamplingRate, b, tot.Bytes*1000)
	}
}

// Truncating a datagram keeps the complete records before the cut and counts
// the rest; it never panics.
func TestTruncated(t *testing.T) {
	now := time.Now().UTC()
	for _, kind := range []string{flowgen.NetFlow9, flowgen.IPFIX, flowgen.SFlow5} {
		t.Run(kind, func(t *testing.T) {
			d, m := testDecoder(DefaultConfig())
			g, _ := flowgen.New(kind, 8)
			if tp := g.Templates(uint32(now.Unix())); tp != nil {
				d.DecodeNetFlow(tp, exporterAddr, now, nil)
			}
			full := g.Next(nil, uint32(now.Unix()))
			for cut := 0; cut < len(full); cut++ {
				pkt := append([]byte(nil), full[:cut]...)
				var out []record.Flow
				if kind == flowgen.SFlow5 {
					out = d.DecodeSFlow(pkt, exporterAddr, now, nil)
				} else {
					out = d.DecodeNetFlow(pkt, exporterAddr, now, nil)
				}
				if len(out) > 8 {
					t.Fatalf("cut %d: %d flows", cut, len(out))
				}
				for i, f := range out {
					if f.SrcAddr != netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}) {
						t.Fatalf("cut %d: flow %d has src %s", cut, i, f.SrcAddr)
					}
				}
			}
			if kind != flowgen.SFlow5 {
				// The last record is cut: the 7 before it are kept.
				if out := d.DecodeNetFlow(append([]byte(nil), full[:len(full)-1]...), exporterAddr, now, nil); len(out) != 7 {
					t.Errorf("cut by one byte: %d flows, want 7", len(out))
				}
			}
			if n := testutil.CollectAndCount(m.errors); n == 0 {
				t.Fatal("no error counted")
			}
		})
	}
}

// A template record claiming 65535 fields in a few bytes is refused before
// goflow2 sizes a slice by it; padding after templates is not an error.
func TestTemplateClaims(t *testing.T) {
	now := time.Now()
	for _, version := range []uint16{9, 10} {
		d, m := testDecoder(DefaultConfig())
		var pkt []byte
		if version == 9 {
			pkt = []byte{0, 9, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
		} else {
			pkt = []byte{0, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
		}
		tplSet := uint16(0)
		if version == 10 {
			tplSet = 2
		}
		for range 1000 { // sets of 8 bytes: a record header claiming 65535 fields and one field
			pkt = binary.BigEndian.AppendUint16(pkt, tplSet)
			pkt = binary.BigEndian.AppendUint16(pkt, 12)
			pkt = append(pkt, 1, 0, 0xff, 0xff, 0, 8, 0, 4)
		}
		if version == 10 {
			binary.BigEndian.PutUint16(pkt[2:], uint16(len(pkt)))
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		d.DecodeNetFlow(pkt, exporterAddr, now, nil)
		runtime.ReadMemStats(&after)
		if a := after.TotalAlloc - before.TotalAlloc; a > 4<<20 {
			t.Errorf("v%d: %d bytes allocated for a %d-byte datagram", version, a, len(pkt))
		}
		if got := testutil.ToFloat64(m.errors.WithLabelValues("127.0.0.9", reasonMalformed)); got != 1000 {
			t.Errorf("v%d: malformed = %v, want 1000", version, got)
		}
	}
	// Templates followed by 4 bytes of zero padding: no error.
	d, m := testDecoder(DefaultConfig())
	g, _ := flowgen.New(flowgen.IPFIX, 2)
	tpl := g.Templates(uint32(now.Unix()))
	binary.BigEndian.PutUint16(tpl[18:], binary.BigEndian.Uint16(tpl[18:])+4) // the template set grows by 4
	tpl = append(tpl[:16+int(binary.BigEndian.Uint16(tpl[18:]))-4], append([]byte{0, 0, 0, 0}, tpl[16+int(binary.BigEndian.Uint16(tpl[18:]))-4:]...)...)
	binary.BigEndian.PutUint16(tpl[2:], uint16(len(tpl)))
	d.DecodeNetFlow(tpl, exporterAddr, now, nil)
	if out := d.DecodeNetFlow(g.Next(nil, uint32(now.Unix())), exporterAddr, now, nil); len(out) != 2 {
		t.Errorf("after padded templates: %d flows", len(out))
	}
	if n := testutil.CollectAndCount(m.errors); n != 0 {
		t.Errorf("padding counted as an error")
	}
}
