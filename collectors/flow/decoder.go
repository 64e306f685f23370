package flow

import (
	"net/netip"
	"sync"
	"time"

	"github.com/netsampler/goflow2/v2/decoders/netflow"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meridian-obs/meridian/pipeline/record"
)

// Flow types, as stored in the flow_type column.
const (
	typeNetFlow5 = "netflow5"
	typeNetFlow9 = "netflow9"
	typeIPFIX    = "ipfix"
	typeSFlow5   = "sflow5"
)

var flowTypes = [...]string{typeNetFlow5, typeNetFlow9, typeIPFIX, typeSFlow5}

func typeIndex(t string) int {
	for i, x := range flowTypes {
		if x == t {
			return i
		}
	}
	return 0
}

// maxExporters bounds the per-exporter state (templates, counters) that
// datagrams from unknown sources can create.
const maxExporters = 4096

// Decoder turns datagrams into enriched flows. It keeps templates and
// sampling rates per exporter address and observation domain. Safe for
// concurrent use by several readers.
type Decoder struct {
	enr *enricher
	m   *metrics

	mu        sync.RWMutex
	exporters map[netip.Addr]*exporterState
}

// exporterState is what the decoder learnt from one exporter.
type exporterState struct {
	addr  netip.Addr
	label string
	info  exporterInfo

	// templates is goflow2's template system, keyed by version, observation
	// domain and template id; it holds our compiled *template values.
	templates netflow.NetFlowTemplateSystem

	mu       sync.RWMutex
	sampling map[uint64]uint64 // version<<32 | domain → rate from options data
	sysInit  map[uint64]int64  // version<<32 | domain → systemInitTimeMilliseconds

	datagrams [len(flowTypes)]prometheus.Counter
	flows     [len(flowTypes)]prometheus.Counter
	m         *metrics
}

func newDecoder(cfg Config, m *metrics) *Decoder {
	return &Decoder{enr: newEnricher(cfg), m: m, exporters: map[netip.Addr]*exporterState{}}
}

// exporter returns the state of addr, creating it on first sight; nil when
// too many exporters are known already.
func (d *Decoder) exporter(addr netip.Addr) *exporterState {
	addr = addr.Unmap()
	d.mu.RLock()
	st := d.exporters[addr]
	d.mu.RUnlock()
	if st != nil {
		return st
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if st = d.exporters[addr]; st != nil {
		return st
	}
	if len(d.exporters) >= maxExporters {
		d.m.errors.WithLabelValues("other", reasonTooManyExporter).Inc()
		return nil
	}
	st = &exporterState{
		addr: addr, label: addr.String(), info: d.enr.exporter(addr),
		templates: netflow.CreateTemplateSystem(),
		sampling:  map[uint64]uint64{}, sysInit: map[uint64]int64{}, m: d.m,
	}
	for i, t := range flowTypes {
		st.datagrams[i] = d.m.datagrams.WithLabelValues(st.label, t)
		st.flows[i] = d.m.flows.WithLabelValues(st.label, t)
	}
	d.exporters[addr] = st
	return st
}

func (st *exporterState) fail(reason string) {
	st.m.errors.WithLabelValues(st.label, reason).Inc()
}

func (st *exporterState) samplingRate(version uint16, domain uint32) uint64 {
	st.mu.RLock()
	r := st.sampling[uint64(version)<<32|uint64(domain)]
	st.mu.RUnlock()
	return r
}

func (st *exporterState) setSamplingRate(version uint16, domain uint32, r uint64) {
	st.mu.Lock()
	st.sampling[uint64(version)<<32|uint64(domain)] = r
	st.mu.Unlock()
}

func (st *exporterState) systemInit(version uint16, domain uint32) int64 {
	st.mu.RLock()
	r := st.sysInit[uint64(version)<<32|uint64(domain)]
	st.mu.RUnlock()
	return r
}

func (st *exporterState) setSystemInit(version uint16, domain uint32, ms int64) {
	st.mu.Lock()
	st.sysInit[uint64(version)<<32|uint64(domain)] = ms
	st.mu.Unlock()
}

// base returns a flow holding what every record of a datagram shares.
func (st *exporterState) base(now time.Time, ft string) record.Flow {
	return record.Flow{
		TimeReceived: now, FlowType: ft, ExporterAddr: st.addr,
		ExporterRegion: st.info.Region, ExporterSite: st.info.Site,
	}
}

// finish applies sampling and enrichment to f.
func (d *Decoder) finish(st *exporterState, f *record.Flow, rate uint64) {
	if st.info.SamplingRate > 0 {
		rate = st.info.SamplingRate
	}
	if rate == 0 {
		rate = 1
	}
	f.SamplingRate = rate
	f.Bytes *= rate
	f.Packets *= rate
	if f.EType == 0 {
		if f.SrcAddr.Is6() && !f.SrcAddr.Is4In6() {
			f.EType = 0x86dd
		} else if f.SrcAddr.IsValid() {
			f.EType = 0x0800
		}
	}
	d.enr.flow(f, st.info.Interfaces)
}

// DecodeNetFlow decodes one NetFlow v5, v9 or IPFIX datagram from src,
// appending its flows to out. Errors are counted per exporter and reason;
// the records that could be decoded are returned even then.
func (d *Decoder) DecodeNetFlow(pkt []byte, src netip.Addr, now time.Time, out []record.Flow) []record.Flow {
	st := d.exporter(src)
	if st == nil {
		return out
	}
	if len(pkt) < 2 {
		st.fail(reasonTruncated)
		return out
	}
	switch uint16(pkt[0])<<8 | uint16(pkt[1]) {
	case 5:
		return d.decodeV5(st, pkt, now, out)
	case 9, 10:
		return d.decodeV9(st, pkt, now, out)
	}
	st.fail(reasonUnknownVersion)
	return out
}
