package flow

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/netsampler/goflow2/v2/decoders/netflowlegacy"

	"github.com/meridian-obs/meridian/pipeline/record"
)

// decodeV5 decodes NetFlow v5 with goflow2's decoder.
func (d *Decoder) decodeV5(st *exporterState, pkt []byte, now time.Time, out []record.Flow) []record.Flow {
	const hdr, rec = 24, 48
	ti := typeIndex(typeNetFlow5)
	if len(pkt) < hdr {
		st.fail(reasonTruncated)
		return out
	}
	st.datagrams[ti].Inc()
	// Never let the header's count size an allocation beyond the datagram:
	// keep the complete records, count the rest as truncated.
	count := int(binary.BigEndian.Uint16(pkt[2:]))
	if avail := (len(pkt) - hdr) / rec; count > avail {
		st.fail(reasonTruncated)
		count = avail
		binary.BigEndian.PutUint16(pkt[2:], uint16(avail))
	}
	var p netflowlegacy.PacketNetFlowV5
	if err := netflowlegacy.DecodeMessageVersion(bytes.NewBuffer(pkt), &p); err != nil {
		st.fail(reasonMalformed)
		return out
	}
	rate := uint64(p.SamplingInterval & 0x3fff)
	exportMs := int64(p.UnixSecs)*1000 + int64(p.UnixNSecs)/1e6
	base := st.base(now, typeNetFlow5)
	base.EType = 0x0800
	for i := 0; i < count && i < len(p.Records); i++ {
		r := &p.Records[i]
		out = append(out, base)
		f := &out[len(out)-1]
		f.SrcAddr = netip.AddrFrom4([4]byte{byte(r.SrcAddr >> 24), byte(r.SrcAddr >> 16), byte(r.SrcAddr >> 8), byte(r.SrcAddr)})
		f.DstAddr = netip.AddrFrom4([4]byte{byte(r.DstAddr >> 24), byte(r.DstAddr >> 16), byte(r.DstAddr >> 8), byte(r.DstAddr)})
		f.InIf, f.OutIf = uint32(r.Input), uint32(r.Output)
		f.Packets, f.Bytes = uint64(r.DPkts), uint64(r.DOctets)
		f.TimeStart = time.UnixMilli(exportMs - int64(p.SysUptime-r.First)).UTC()
		f.TimeEnd = time.UnixMilli(exportMs - int64(p.SysUptime-r.Last)).UTC()
		f.SrcPort, f.DstPort = r.SrcPort, r.DstPort
		f.TCPFlags, f.Proto = r.TCPFlags, r.Proto
		f.SrcAS, f.DstAS = uint32(r.SrcAS), uint32(r.DstAS)
		d.finish(st, f, rate)
	}
	if count > 0 {
		st.flows[ti].Add(float64(count))
	}
	return out
}
