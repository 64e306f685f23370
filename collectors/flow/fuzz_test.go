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

// v5Packet builds a NetFlow v5 datagram of n records.
func v5Packet(n int) []byte {
	be := binary.BigEndian
	b := be.AppendUint16(nil, 5)
	b = be.AppendUint16(b, uint16(n))
	b = be.AppendUint32(b, 100_000)
	b = be.AppendUint32(b, 1_800_000_000)
	b = be.AppendUint32(b, 0)
	b = be.AppendUint32(b, 0)
	b = append(b, 0, 0)
	b = be.AppendUint16(b, 0)
	for i := range n {
		b = append(b, 10, 0, 0, byte(i), 172, 16, 0, 1, 0, 0, 0, 0)
		b = be.AppendUint16(b, 1)
		b = be.AppendUint16(b, 2)
		b = be.AppendUint32(b, uint32(i+1))
		b = be.AppendUint32(b, uint32(100*(i+1)))
		b = be.AppendUint32(b, 99_000)
		b = be.AppendUint32(b, 99_500)
		b = be.AppendUint16(b, 1000)
		b = be.AppendUint16(b, 443)
		b = append(b, 0, 0x18, 6, 0)
		b = be.AppendUint16(b, 0)
		b = be.AppendUint16(b, 0)
		b = append(b, 24, 24, 0, 0)
	}
	return b
}

func TestV5(t *testing.T) {
	d, m := testDecoder(testNetworks())
	now := time.Now().UTC()
	out := d.DecodeNetFlow(v5Packet(3), exporterAddr, now, nil)
	if len(out) != 3 {
		t.Fatalf("%d flows", len(out))
	}
	f := out[2]
	if f.Bytes != 300 || f.Packets != 3 || f.SrcAddr != netip.MustParseAddr("10.0.0.2") || f.DstPort != 443 || f.FlowType != typeNetFlow5 ||
		f.SrcRegion != "eu-west" || f.TimeEnd.Sub(f.TimeStart) != 500*time.Millisecond {
		t.Errorf("%+v", f)
	}
	// A header claiming 30 records over 2 complete ones: 2 kept, counted.
	p := v5Packet(2)
	binary.BigEndian.PutUint16(p[2:], 30)
	if out := d.DecodeNetFlow(p, exporterAddr, now, nil); len(out) != 2 {
		t.Fatalf("short v5: %d flows, want 2", len(out))
	}
	if v := m.errors.WithLabelValues("127.0.0.9", reasonTruncated); v == nil {
		t.Fatal("no counter")
	}
}

func fuzzSeeds(f *testing.F) (nf9tpl, ipfixTpl []byte) {
	now := uint32(1_800_000_000)
	for _, kind := range []string{flowgen.NetFlow9, flowgen.IPFIX, flowgen.SFlow5} {
		g, _ := flowgen.New(kind, 4)
		g.SamplingRate = 10
		tpl := g.Templates(now)
		switch kind {
		case flowgen.NetFlow9:
			nf9tpl = tpl
		case flowgen.IPFIX:
			ipfixTpl = tpl
		}
		if tpl != nil {
			f.Add(tpl)
		}
		data := g.Next(nil, now)
		f.Add(data)
		f.Add(data[:len(data)/2])
		f.Add(append(append([]byte(nil), tpl...), data[len(tpl)%len(data):]...))
	}
	f.Add(v5Packet(2))
	f.Add(v5Packet(1)[:30])
	f.Add([]byte{0, 9})
	f.Add([]byte{0, 10, 0, 16})
	return
}

// FuzzDecodeNetFlow feeds arbitrary datagrams to the NetFlow v5/v9/IPFIX
// decoder, whose templates were learnt from the generator: never a panic,
// never a flow from nothing.
func FuzzDecodeNetFlow(f *testing.F) {
	nf9, ipfix := fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, pkt []byte) {
		d, _ := testDecoder(testNetworks())
		now := time.Now()
		d.DecodeNetFlow(nf9, exporterAddr, now, nil)
		d.DecodeNetFlow(ipfix, exporterAddr, now, nil)
		out := d.DecodeNetFlow(append([]byte(nil), pkt...), exporterAddr, now, nil)
		// A second pass with templates the input itself may have defined.
		out = d.DecodeNetFlow(append([]byte(nil), pkt...), exporterAddr, now, out)
		checkFlows(t, out, len(pkt))
	})
}

// FuzzDecodeSFlow does the same for sFlow v5.
func FuzzDecodeSFlow(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, pkt []byte) {
		d, _ := testDecoder(testNetworks())
		out := d.DecodeSFlow(append([]byte(nil), pkt...), exporterAddr, time.Now(), nil) // the decoder may clamp counts in place
		checkFlows(t, out, len(pkt)/2)
	})
}

func checkFlows(t *testing.T, out []record.Flow, maxFlows int) {
	t.Helper()
	if len(out) > maxFlows {
		t.Fatalf("%d flows from %d bytes", len(out), maxFlows)
	}
	for _, f := range out {
		if f.SamplingRate == 0 {
			t.Fatalf("flow without a sampling rate: %+v", f)
		}
	}
}

// An expanded flow sample claiming 2^32−1 records must not reach goflow2's
// unbounded make: the count is clamped, the datagram counted as malformed.
func TestSFlowRecordClaim(t *testing.T) {
	be := binary.BigEndian
	p := be.AppendUint32(nil, 5)
	p = be.AppendUint32(p, 1)
	p = append(p, 127, 0, 0, 9)
	p = be.AppendUint32(p, 0)
	p = be.AppendUint32(p, 1)
	p = be.AppendUint32(p, 1000)
	p = be.AppendUint32(p, 1) // one sample
	p = be.AppendUint32(p, 3) // expanded flow sample
	p = be.AppendUint32(p, 44)
	for range 10 {
		p = be.AppendUint32(p, 1)
	}
	p = be.AppendUint32(p, 0xffffffff) // records
	d, m := testDecoder(DefaultConfig())
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	d.DecodeSFlow(p, exporterAddr, time.Now(), nil)
	runtime.ReadMemStats(&after)
	if a := after.TotalAlloc - before.TotalAlloc; a > 1<<20 {
		t.Errorf("%d bytes allocated", a)
	}
	if got := testutil.ToFloat64(m.errors.WithLabelValues("127.0.0.9", reasonMalformed)); got != 1 {
		t.Errorf("malformed = %v, want 1", got)
	}
}
