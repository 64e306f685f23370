package flow

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/netsampler/goflow2/v2/decoders/sflow"

	"github.com/meridian-obs/meridian/pipeline/record"
)

// DecodeSFlow decodes one sFlow v5 datagram with goflow2's decoder. The
// exporter is the sFlow agent address (the UDP source when the agent
// address is unusable). Flow samples become one flow each: packets = the
// sampling rate, bytes = frame length × the sampling rate. Counter
// samples are ignored. Samples decoded before an error are kept.
func (d *Decoder) DecodeSFlow(pkt []byte, src netip.Addr, now time.Time, out []record.Flow) []record.Flow {
	clamped := clampSFlowRecords(pkt)
	var p sflow.Packet
	err := sflow.DecodeMessageVersion(bytes.NewBuffer(pkt), &p)
	exp := src
	if a, ok := netip.AddrFromSlice(p.AgentIP); ok && !a.IsUnspecified() {
		exp = a
	}
	st := d.exporter(exp)
	if st == nil {
		return out
	}
	ti := typeIndex(typeSFlow5)
	if clamped {
		st.fail(reasonMalformed)
	}
	if err != nil {
		switch {
		case p.Version != 5:
			st.fail(reasonUnknownVersion)
			return out
		case len(p.Samples) == 0:
			st.fail(reasonTruncated)
			return out
		default:
			st.fail(reasonMalformed)
		}
	}
	st.datagrams[ti].Inc()
	start := len(out)
	base := st.base(now, typeSFlow5)
	for _, s := range p.Samples {
		var (
			rate      uint32
			in, outIf uint32
			records   []sflow.FlowRecord
		)
		switch s := s.(type) {
		case sflow.FlowSample:
			rate, in, outIf, records = s.SamplingRate, s.Input&0x3fffffff, s.Output&0x3fffffff, s.Records
		case sflow.ExpandedFlowSample:
			rate, in, outIf, records = s.SamplingRate, s.InputIfValue, s.OutputIfValue, s.Records
		default:
			continue
		}
		f := base
		f.InIf, f.OutIf = in, outIf
		have := false
		for _, r := range records {
			switch v := r.Data.(type) {
			case sflow.SampledHeader:
				f.Bytes = uint64(v.FrameLength)
				if v.Protocol == 1 { // Ethernet
					parseEthernet(&f, v.HeaderData)
				} else if v.Protocol == 11 { // IPv4
					parseIP(&f, 0x0800, v.HeaderData)
				} else if v.Protocol == 12 { // IPv6
					parseIP(&f, 0x86dd, v.HeaderData)
				}
				have = true
			case sflow.SampledIPv4:
				if !have {
					setSampledIP(&f, &v.SampledIPBase, 0x0800)
					have = true
				}
			case sflow.SampledIPv6:
				if !have {
					setSampledIP(&f, &v.SampledIPBase, 0x86dd)
					have = true
				}
			case sflow.ExtendedGateway:
				f.SrcAS = v.SrcAS
				if len(v.ASPath) > 0 {
					f.DstAS = v.ASPath[len(v.ASPath)-1]
				} else {
					f.DstAS = v.AS
				}
			}
		}
		if !have {
			continue
		}
		f.Packets = 1
		f.TimeStart, f.TimeEnd = now, now
		out = append(out, f)
		d.finish(st, &out[len(out)-1], uint64(rate))
	}
	if n := len(out) - start; n > 0 {
		st.flows[ti].Add(float64(n))
	}
	return out
}

func setSampledIP(f *record.Flow, b *sflow.SampledIPBase, etype uint16) {
	f.EType = etype
	f.Bytes = uint64(b.Length)
	f.Proto = uint8(b.Protocol)
	if a, ok := netip.AddrFromSlice(b.SrcIP); ok {
		f.SrcAddr = a
	}
	if a, ok := netip.AddrFromSlice(b.DstIP); ok {
		f.DstAddr = a
	}
	f.SrcPort, f.DstPort = uint16(b.SrcPort), uint16(b.DstPort)
	f.TCPFlags = uint8(b.TcpFlags)
}

// parseEthernet reads the addresses, protocol and ports of a sampled
// Ethernet frame (802.1Q tags skipped). What is cut off stays zero.
func parseEthernet(f *record.Flow, b []byte) {
	if len(b) < 14 {
		return
	}
	et := binary.BigEndian.Uint16(b[12:])
	b = b[14:]
	for (et == 0x8100 || et == 0x88a8) && len(b) >= 4 {
		et = binary.BigEndian.Uint16(b[2:])
		b = b[4:]
	}
	parseIP(f, et, b)
}

func parseIP(f *record.Flow, et uint16, b []byte) {
	f.EType = et
	var l4 []byte
	switch et {
	case 0x0800:
		if len(b) < 20 {
			return
		}
		ihl := int(b[0]&0x0f) * 4
		f.Proto = b[9]
		f.SrcAddr = netip.AddrFrom4([4]byte(b[12:16]))
		f.DstAddr = netip.AddrFrom4([4]byte(b[16:20]))
		if ihl >= 20 && len(b) >= ihl && binary.BigEndian.Uint16(b[6:])&0x1fff == 0 {
			l4 = b[ihl:]
		}
	case 0x86dd:
		if len(b) < 40 {
			return
		}
		f.Proto = b[6]
		f.SrcAddr = netip.AddrFrom16([16]byte(b[8:24]))
		f.DstAddr = netip.AddrFrom16([16]byte(b[24:40]))
		l4 = b[40:]
	default:
		return
	}
	switch f.Proto {
	case 6:
		if len(l4) >= 14 {
			f.TCPFlags = l4[13]
		}
		fallthrough
	case 17, 132:
		if len(l4) >= 4 {
			f.SrcPort = binary.BigEndian.Uint16(l4)
			f.DstPort = binary.BigEndian.Uint16(l4[2:])
		}
	}
}

// clampSFlowRecords lowers, in place, the record count of every expanded
// flow sample that claims more records than its bytes can hold (8 bytes a
// record at least). goflow2 sizes a slice from that count without a bound:
// 2^32−1 would be an unrecoverable out-of-memory. It reports whether it
// changed anything.
func clampSFlowRecords(pkt []byte) bool {
	be := binary.BigEndian
	if len(pkt) < 8 || be.Uint32(pkt) != 5 {
		return false
	}
	off := 8
	switch be.Uint32(pkt[4:]) {
	case 1:
		off += 4
	case 2:
		off += 16
	default:
		return false
	}
	off += 12 // sub-agent, sequence, uptime
	if off+4 > len(pkt) {
		return false
	}
	n := int(be.Uint32(pkt[off:]))
	off += 4
	changed := false
	for i := 0; i < n && off+8 <= len(pkt); i++ {
		format, l := be.Uint32(pkt[off:]), int(be.Uint32(pkt[off+4:]))
		off += 8
		if l > len(pkt)-off {
			break
		}
		if format == 3 && l >= 44 { // expanded flow sample: the record count is at +40
			if max := uint32((l - 44) / 8); be.Uint32(pkt[off+40:]) > max {
				be.PutUint32(pkt[off+40:], max)
				changed = true
			}
		}
		off += l
	}
	return changed
}
