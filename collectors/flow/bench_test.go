package flow

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/netsampler/goflow2/v2/decoders/netflow"
	"github.com/netsampler/goflow2/v2/decoders/sflow"
	"github.com/netsampler/goflow2/v2/producer"
	protoproducer "github.com/netsampler/goflow2/v2/producer/proto"

	"github.com/meridian-obs/meridian/collectors/flow/flowgen"
	"github.com/meridian-obs/meridian/pipeline/record"
)

// benchPackets returns a template datagram and 64 data datagrams.
func benchPackets(b *testing.B, kind string) ([]byte, [][]byte, int) {
	g, err := flowgen.New(kind, 0)
	if err != nil {
		b.Fatal(err)
	}
	g.SamplingRate = 100
	now := uint32(time.Now().Unix())
	var pkts [][]byte
	for range 64 {
		pkts = append(pkts, g.Next(nil, now))
	}
	return g.Templates(now), pkts, g.FlowsPerPacket
}

// BenchmarkDecode measures decode + sampling + enrichment per flow on one
// goroutine: "meridian" is our producer (goflow2's decoders for headers and
// templates, records straight into record.Flow, LPM enrichment);
// "goflow2-proto" is goflow2's own full decoder with its stock protobuf
// producer (Produce + Commit, no serialisation), the reference.
func BenchmarkDecode(b *testing.B) {
	for _, kind := range []string{flowgen.NetFlow9, flowgen.IPFIX, flowgen.SFlow5} {
		tpl, pkts, per := benchPackets(b, kind)
		src := netip.MustParseAddr("127.0.0.9")
		b.Run("meridian/"+kind, func(b *testing.B) {
			d, _ := testDecoder(testNetworks())
			now := time.Now()
			decode := d.DecodeNetFlow
			if kind == flowgen.SFlow5 {
				decode = d.DecodeSFlow
			}
			if tpl != nil {
				decode(tpl, src, now, nil)
			}
			out := make([]record.Flow, 0, 1024)
			flows := 0
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				out = decode(pkts[i%len(pkts)], src, now, out[:0])
				flows += len(out)
			}
			if flows != b.N*per {
				b.Fatalf("decoded %d flows, want %d", flows, b.N*per)
			}
			b.ReportMetric(float64(flows)/b.Elapsed().Seconds(), "flows/s")
		})
		b.Run("goflow2-proto/"+kind, func(b *testing.B) {
			cfg, err := (&protoproducer.ProducerConfig{}).Compile()
			if err != nil {
				b.Fatal(err)
			}
			prod, err := protoproducer.CreateProtoProducer(cfg, protoproducer.CreateSamplingSystem)
			if err != nil {
				b.Fatal(err)
			}
			ts := netflow.CreateTemplateSystem()
			args := &producer.ProduceArgs{Src: netip.AddrPortFrom(src, 2055), SamplerAddress: src, TimeReceived: time.Now()}
			decode := func(p []byte) int {
				var msg any
				switch kind {
				case flowgen.SFlow5:
					var pkt sflow.Packet
					if err := sflow.DecodeMessageVersion(bytes.NewBuffer(p), &pkt); err != nil {
						b.Fatal(err)
					}
					msg = &pkt
				default:
					var v9 netflow.NFv9Packet
					var ipfix netflow.IPFIXPacket
					if err := netflow.DecodeMessageVersion(bytes.NewBuffer(p), ts, &v9, &ipfix); err != nil {
						b.Fatal(err)
					}
					msg = &v9
					if kind == flowgen.IPFIX {
						msg = &ipfix
					}
				}
				set, err := prod.Produce(msg, args)
				if err != nil {
					b.Fatal(err)
				}
				n := len(set)
				prod.Commit(set)
				return n
			}
			if tpl != nil {
				decode(tpl)
			}
			flows := 0
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				flows += decode(pkts[i%len(pkts)])
			}
			if flows != b.N*per {
				b.Fatalf("produced %d flows, want %d", flows, b.N*per)
			}
			b.ReportMetric(float64(flows)/b.Elapsed().Seconds(), "flows/s")
		})
	}
}
