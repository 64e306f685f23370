package firewall

import (
	"net/netip"
	"slices"
)

// Location is a region and a site.
type Location struct {
	Region string
	Site   string
}

// PrefixTable is a small longest-prefix-match table from CIDR to Location.
// It keeps one map per prefix length in use and probes them from the longest
// down: a lookup costs at most a few map probes and never allocates.
type PrefixTable struct {
	v4, v6 []prefixLevel
}

type prefixLevel struct {
	bits int
	m    map[netip.Prefix]Location
}

// Add inserts p (masked) → loc; a later Add of the same prefix wins.
func (t *PrefixTable) Add(p netip.Prefix, loc Location) {
	p = p.Masked()
	lv := &t.v6
	if p.Addr().Is4() {
		lv = &t.v4
	}
	for i := range *lv {
		if (*lv)[i].bits == p.Bits() {
			(*lv)[i].m[p] = loc
			return
		}
	}
	*lv = append(*lv, prefixLevel{bits: p.Bits(), m: map[netip.Prefix]Location{p: loc}})
	slices.SortFunc(*lv, func(a, b prefixLevel) int { return b.bits - a.bits })
}

// Lookup returns the location of the longest prefix holding a.
func (t *PrefixTable) Lookup(a netip.Addr) (Location, bool) {
	if !a.IsValid() {
		return Location{}, false
	}
	a = a.Unmap()
	lv := t.v6
	if a.Is4() {
		lv = t.v4
	}
	for _, l := range lv {
		p, err := a.Prefix(l.bits)
		if err != nil {
			continue
		}
		if loc, ok := l.m[p]; ok {
			return loc, true
		}
	}
	return Location{}, false
}

// Len returns the number of prefixes.
func (t *PrefixTable) Len() int {
	n := 0
	for _, l := range t.v4 {
		n += len(l.m)
	}
	for _, l := range t.v6 {
		n += len(l.m)
	}
	return n
}
