package flow

import (
	"net/netip"

	"github.com/meridian-obs/meridian/pipeline/record"
)

// place is what the network table says about an address.
type place struct {
	Region, Site, Role string
}

// exporterInfo is the static (configured) knowledge of one exporter.
type exporterInfo struct {
	Region, Site string
	SamplingRate uint64 // 0: use the exporter's
	Interfaces   map[uint32]string
}

// enricher resolves addresses to places and exporters to their
// configuration. It is immutable after newEnricher and safe for concurrent
// use; lookups do not allocate.
type enricher struct {
	table     lpm
	places    []place
	exporters map[netip.Addr]*exporterInfo
}

func newEnricher(cfg Config) *enricher {
	e := &enricher{exporters: map[netip.Addr]*exporterInfo{}}
	for _, n := range cfg.Networks {
		p, err := netip.ParsePrefix(n.Prefix)
		if err != nil {
			continue // Validate reported it
		}
		e.places = append(e.places, place{Region: n.Region, Site: n.Site, Role: n.Role})
		e.table.Insert(p, int32(len(e.places)-1))
	}
	for _, x := range cfg.Exporters {
		a, err := netip.ParseAddr(x.Addr)
		if err != nil {
			continue
		}
		e.exporters[a.Unmap()] = &exporterInfo{Region: x.Region, Site: x.Site, SamplingRate: x.SamplingRate, Interfaces: x.Interfaces}
	}
	return e
}

func (e *enricher) place(a netip.Addr) *place {
	if i := e.table.Lookup(a); i >= 0 {
		return &e.places[i]
	}
	return nil
}

// exporter returns the exporter's information: configured values first,
// else region and site from the network table.
func (e *enricher) exporter(a netip.Addr) exporterInfo {
	a = a.Unmap()
	var info exporterInfo
	if x, ok := e.exporters[a]; ok {
		info = *x
	}
	if p := e.place(a); p != nil {
		if info.Region == "" {
			info.Region = p.Region
		}
		if info.Site == "" {
			info.Site = p.Site
		}
	}
	return info
}

// flow fills the places and interface names of f.
func (e *enricher) flow(f *record.Flow, ifs map[uint32]string) {
	if p := e.place(f.SrcAddr); p != nil {
		f.SrcRegion, f.SrcSite, f.SrcRole = p.Region, p.Site, p.Role
	}
	if p := e.place(f.DstAddr); p != nil {
		f.DstRegion, f.DstSite, f.DstRole = p.Region, p.Site, p.Role
	}
	if ifs != nil {
		f.InIfName = ifs[f.InIf]
		f.OutIfName = ifs[f.OutIf]
	}
}
