package flow

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/netsampler/goflow2/v2/decoders/netflow"

	"github.com/meridian-obs/meridian/pipeline/record"
)

// template is a NetFlow v9 / IPFIX template compiled for our producer: the
// goflow2 template system stores these, keyed by version, observation
// domain and template id.
type template struct {
	fields  []tfield
	minSize int // bytes of one record at least (variable fields count 1)
	options bool
}

type tfield struct {
	typ    uint16
	length uint16 // 0xffff: variable length (IPFIX)
	skip   bool   // enterprise-specific or options scope field
}

func compileTemplate(scopes, fields []netflow.Field, options bool) (*template, bool) {
	t := &template{options: options, fields: make([]tfield, 0, len(scopes)+len(fields))}
	for i, list := range [][]netflow.Field{scopes, fields} {
		for _, f := range list {
			tf := tfield{typ: f.Type, length: f.Length, skip: f.PenProvided || i == 0}
			if f.Length == 0xffff {
				t.minSize++
			} else {
				t.minSize += int(f.Length)
			}
			t.fields = append(t.fields, tf)
		}
	}
	// A record of zero bytes would never consume its set.
	return t, t.minSize > 0
}

func be(v []byte) uint64 {
	var x uint64
	for _, b := range v {
		x = x<<8 | uint64(b)
	}
	return x
}

// decodeV9 decodes NetFlow v9 and IPFIX: the header and sets are walked
// here, template sets are decoded by goflow2's decoders into goflow2's
// template system, and data records are read by the compiled template
// straight into record.Flow.
func (d *Decoder) decodeV9(st *exporterState, pkt []byte, now time.Time, out []record.Flow) []record.Flow {
	version := binary.BigEndian.Uint16(pkt)
	var (
		domain        uint32
		hdr, end      int
		unixSecs, upt uint32
		ft            string
	)
	if version == 9 {
		ft, hdr, end = typeNetFlow9, 20, len(pkt)
		if len(pkt) < hdr {
			st.fail(reasonTruncated)
			return out
		}
		upt = binary.BigEndian.Uint32(pkt[4:])
		unixSecs = binary.BigEndian.Uint32(pkt[8:])
		domain = binary.BigEndian.Uint32(pkt[16:])
	} else {
		ft, hdr = typeIPFIX, 16
		if len(pkt) < hdr {
			st.fail(reasonTruncated)
			return out
		}
		end = int(binary.BigEndian.Uint16(pkt[2:]))
		if end < hdr {
			st.fail(reasonMalformed)
			return out
		}
		if end > len(pkt) {
			st.fail(reasonTruncated)
			end = len(pkt)
		}
		unixSecs = binary.BigEndian.Uint32(pkt[4:])
		domain = binary.BigEndian.Uint32(pkt[12:])
	}
	ti := typeIndex(ft)
	st.datagrams[ti].Inc()
	start := len(out)
	rate := st.samplingRate(version, domain)
	base := st.base(now, ft)
	exportMs := int64(unixSecs) * 1000
	sysInit := int64(0)
	if version == 10 {
		sysInit = st.systemInit(version, domain)
	}
	off := hdr
	for off+4 <= end {
		id := binary.BigEndian.Uint16(pkt[off:])
		slen := int(binary.BigEndian.Uint16(pkt[off+2:]))
		if slen < 4 {
			st.fail(reasonMalformed)
			break
		}
		var body []byte
		if off+slen > end {
			// Keep the complete records of a cut set; count the cut.
			st.fail(reasonTruncated)
			body, off = pkt[off+4:end], end
		} else {
			body, off = pkt[off+4:off+slen], off+slen
		}
		switch {
		case (version == 9 && id == 0) || (version == 10 && id == 2):
			body = d.checkTemplates(st, version, setTemplate, body)
			recs, err := netflow.DecodeTemplateSet(version, bytes.NewBuffer(body))
			if err != nil {
				st.fail(reasonBadTemplate)
			}
			for _, r := range recs {
				if r.TemplateId < 256 {
					st.fail(reasonBadTemplate)
					continue
				}
				if len(r.Fields) == 0 { // IPFIX template withdrawal
					_, _ = st.templates.RemoveTemplate(version, domain, r.TemplateId)
					continue
				}
				t, ok := compileTemplate(nil, r.Fields, false)
				if !ok {
					st.fail(reasonBadTemplate)
					continue
				}
				_ = st.templates.AddTemplate(version, domain, r.TemplateId, t)
			}
		case version == 9 && id == 1:
			body = d.checkTemplates(st, version, setOptionsTemplate, body)
			recs, err := netflow.DecodeNFv9OptionsTemplateSet(bytes.NewBuffer(body))
			if err != nil && len(recs) == 0 {
				st.fail(reasonBadTemplate)
			}
			for _, r := range recs {
				d.addOptions(st, version, domain, r.TemplateId, r.Scopes, r.Options)
			}
		case version == 10 && id == 3:
			body = d.checkTemplates(st, version, setOptionsTemplate, body)
			recs, err := netflow.DecodeIPFIXOptionsTemplateSet(bytes.NewBuffer(body))
			if err != nil && len(recs) == 0 {
				st.fail(reasonBadTemplate)
			}
			for _, r := range recs {
				d.addOptions(st, version, domain, r.TemplateId, r.Scopes, r.Options)
			}
		case id >= 256:
			v, err := st.templates.GetTemplate(version, domain, id)
			t, _ := v.(*template)
			if err != nil || t == nil {
				st.fail(reasonNoTemplate)
				continue
			}
			if t.options {
				if r := d.optionsData(st, version, domain, t, body); r > 0 {
					rate = r
				}
				if version == 10 {
					sysInit = st.systemInit(version, domain)
				}
				continue
			}
			out = d.dataSet(st, t, body, &base, rate, version, exportMs, upt, sysInit, out)
		default:
			st.fail(reasonMalformed)
		}
	}
	if n := len(out) - start; n > 0 {
		st.flows[ti].Add(float64(n))
	}
	return out
}

func (d *Decoder) addOptions(st *exporterState, version uint16, domain uint32, id uint16, scopes, opts []netflow.Field) {
	if id < 256 {
		st.fail(reasonBadTemplate)
		return
	}
	t, ok := compileTemplate(scopes, opts, true)
	if !ok {
		st.fail(reasonBadTemplate)
		return
	}
	_ = st.templates.AddTemplate(version, domain, id, t)
}

// next returns the value of field f at the start of b and the rest, or
// ok=false when b is too short.
func next(f *tfield, b []byte) (v, rest []byte, ok bool) {
	l := int(f.length)
	if f.length == 0xffff {
		if len(b) < 1 {
			return nil, nil, false
		}
		l, b = int(b[0]), b[1:]
		if l == 255 {
			if len(b) < 2 {
				return nil, nil, false
			}
			l, b = int(binary.BigEndian.Uint16(b)), b[2:]
		}
	}
	if len(b) < l {
		return nil, nil, false
	}
	return b[:l], b[l:], true
}

// optionsData reads options records: the sampling rate (fields 34, 50,
// 305 and 306) and the system init time (160). It returns the rate found.
func (d *Decoder) optionsData(st *exporterState, version uint16, domain uint32, t *template, b []byte) uint64 {
	var found uint64
	for len(b) >= t.minSize {
		var interval, space, rate uint64
		rest := b
		for i := range t.fields {
			f := &t.fields[i]
			v, r, ok := next(f, rest)
			if !ok {
				st.fail(reasonTruncated)
				return found
			}
			rest = r
			if f.skip {
				continue
			}
			switch f.typ {
			case 34, 50:
				rate = be(v)
			case 305:
				interval = be(v)
			case 306:
				space = be(v)
			case 160:
				st.setSystemInit(version, domain, int64(be(v)))
			}
		}
		b = rest
		if interval > 0 {
			rate = (interval + space) / interval
		}
		if rate > 0 {
			st.setSamplingRate(version, domain, rate)
			found = rate
		}
	}
	return found
}

// dataSet decodes the data records of one set.
func (d *Decoder) dataSet(st *exporterState, t *template, b []byte, base *record.Flow, rate uint64, version uint16, exportMs int64, uptime uint32, sysInit int64, out []record.Flow) []record.Flow {
	for len(b) >= t.minSize {
		out = append(out, *base)
		f := &out[len(out)-1]
		var (
			haveBytes, havePackets  bool
			inline, interval, space uint64
			firstUp, lastUp         uint32
			haveFirstUp, haveLastUp bool
			startMs, endMs          int64
		)
		rest := b
		ok := true
		for i := range t.fields {
			tf := &t.fields[i]
			var v []byte
			v, rest, ok = next(tf, rest)
			if !ok {
				break
			}
			if tf.skip {
				continue
			}
			switch tf.typ {
			case 1:
				f.Bytes, haveBytes = be(v), true
			case 85:
				if !haveBytes {
					f.Bytes = be(v)
				}
			case 2:
				f.Packets, havePackets = be(v), true
			case 86:
				if !havePackets {
					f.Packets = be(v)
				}
			case 4:
				f.Proto = uint8(be(v))
			case 6:
				f.TCPFlags = uint8(be(v))
			case 7, 180, 182:
				f.SrcPort = uint16(be(v))
			case 11, 181, 183:
				f.DstPort = uint16(be(v))
			case 8, 27:
				if a, ok := netip.AddrFromSlice(v); ok {
					f.SrcAddr = a
				}
			case 12, 28:
				if a, ok := netip.AddrFromSlice(v); ok {
					f.DstAddr = a
				}
			case 10:
				f.InIf = uint32(be(v))
			case 14:
				f.OutIf = uint32(be(v))
			case 16:
				f.SrcAS = uint32(be(v))
			case 17:
				f.DstAS = uint32(be(v))
			case 22:
				firstUp, haveFirstUp = uint32(be(v)), true
			case 21:
				lastUp, haveLastUp = uint32(be(v)), true
			case 150:
				startMs = int64(be(v)) * 1000
			case 151:
				endMs = int64(be(v)) * 1000
			case 152:
				startMs = int64(be(v))
			case 153:
				endMs = int64(be(v))
			case 60:
				switch be(v) {
				case 4:
					f.EType = 0x0800
				case 6:
					f.EType = 0x86dd
				}
			case 256:
				f.EType = uint16(be(v))
			case 34, 50:
				inline = be(v)
			case 305:
				interval = be(v)
			case 306:
				space = be(v)
			}
		}
		if !ok {
			out = out[:len(out)-1]
			st.fail(reasonTruncated)
			return out
		}
		b = rest
		if version == 9 {
			// Uptime-relative times: export time − (uptime − switched).
			if haveFirstUp {
				startMs = exportMs - int64(uptime-firstUp)
			}
			if haveLastUp {
				endMs = exportMs - int64(uptime-lastUp)
			}
		} else if sysInit > 0 {
			if haveFirstUp {
				startMs = sysInit + int64(firstUp)
			}
			if haveLastUp {
				endMs = sysInit + int64(lastUp)
			}
		}
		if startMs > 0 {
			f.TimeStart = time.UnixMilli(startMs).UTC()
		}
		if endMs > 0 {
			f.TimeEnd = time.UnixMilli(endMs).UTC()
		}
		r := rate
		if interval > 0 {
			inline = (interval + space) / interval
		}
		if inline > 0 {
			r = inline
		}
		d.finish(st, f, r)
	}
	return out
}

const (
	setTemplate = iota
	setOptionsTemplate
)

// checkTemplates returns the prefix of a template set made of complete
// records. goflow2 sizes its field slices from the counts in the header of
// each record before reading them: a record claiming 65535 fields in a few
// bytes would make it allocate ~1 MB, once per such set in a datagram. A
// cut record is counted (malformed) and left out; padding (< 4 bytes) is not.
func (d *Decoder) checkTemplates(st *exporterState, version uint16, kind int, b []byte) []byte {
	off := 0
	for len(b)-off >= 4 {
		r := b[off:]
		if allZero(r) { // padding
			return b[:off]
		}
		var need int
		switch {
		case kind == setTemplate:
			// id, field count, then 4 bytes a field (+4 with an enterprise number).
			n := int(binary.BigEndian.Uint16(r[2:]))
			need = 4
			for i := 0; i < n; i++ {
				if need+4 > len(r) {
					need = len(r) + 1
					break
				}
				if version == 10 && r[need]&0x80 != 0 {
					need += 4
				}
				need += 4
			}
		case version == 9:
			// id, scope length, option length (bytes), then the fields.
			if len(r) < 6 {
				need = len(r) + 1
				break
			}
			need = 6 + int(binary.BigEndian.Uint16(r[2:])) + int(binary.BigEndian.Uint16(r[4:]))
		default:
			// IPFIX options: id, field count, scope field count, then the fields.
			if len(r) < 6 {
				need = len(r) + 1
				break
			}
			n := int(binary.BigEndian.Uint16(r[2:]))
			if int(binary.BigEndian.Uint16(r[4:])) > n {
				need = len(r) + 1
				break
			}
			need = 6
			for i := 0; i < n; i++ {
				if need+4 > len(r) {
					need = len(r) + 1
					break
				}
				if r[need]&0x80 != 0 {
					need += 4
				}
				need += 4
			}
		}
		if need > len(r) {
			st.fail(reasonMalformed)
			return b[:off]
		}
		off += need
	}
	return b[:off]
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}
