package gameday

import (
	"net/netip"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/meridian-obs/meridian/collectors/firewall"
	"github.com/meridian-obs/meridian/collectors/flow"
	"github.com/meridian-obs/meridian/internal/config"
)

// testNetwork is the simulation's regions and prefixes without starting
// anything.
func testNetwork() *Network {
	n := &Network{Prefixes: map[string]string{}}
	for i, name := range RegionNames {
		n.Regions = append(n.Regions, newRegion(i+1, name))
		n.Prefixes[name] = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i + 1), 0, 0}), 16).String()
	}
	return n
}

// regionOf resolves a as the flow collector does with FlowNetworks (the
// longest matching prefix; the lists do not overlap).
func regionOf(t *testing.T, n *Network, a [4]byte) string {
	t.Helper()
	addr := netip.AddrFrom4(a)
	for _, m := range n.FlowNetworks() {
		p := netip.MustParsePrefix(m["prefix"].(string))
		if p.Contains(addr) {
			return m["region"].(string)
		}
	}
	return ""
}

// The demo's flows go between its regions and to and from the internet:
// every flow resolves to known places on both ends, every ordered pair of
// regions and every region↔internet direction appears (#16: the Flows page
// showed "(unknown) → (unknown)").
func TestDemoFlowsCoverEveryRegionPair(t *testing.T) {
	n := testNetwork()
	pairs := map[[2]string]int{}
	for _, r := range n.Regions {
		addrs := n.flowAddrs(r)
		for i := uint64(0); i < 300; i++ {
			src, dst := addrs(i)
			s, d := regionOf(t, n, src), regionOf(t, n, dst)
			if s == "" || d == "" {
				t.Fatalf("exporter %s flow %d: %v → %v resolves to %q → %q; want known regions", r.Name, i, src, dst, s, d)
			}
			if s != r.Name && d != r.Name {
				t.Fatalf("exporter %s flow %d: %s → %s does not touch the exporter's region", r.Name, i, s, d)
			}
			pairs[[2]string{s, d}]++
		}
	}
	for _, a := range RegionNames {
		for _, b := range append(append([]string{}, RegionNames...), Internet) {
			if pairs[[2]string{a, b}] == 0 {
				t.Errorf("no flow %s → %s; pairs seen: %v", a, b, pairs)
			}
		}
		if pairs[[2]string{Internet, a}] == 0 {
			t.Errorf("no flow internet → %s; pairs seen: %v", a, pairs)
		}
	}
}

// The lists the demo writes into the flows and firewall sections are
// valid configuration for those collectors.
func TestDemoCollectorSectionsValidate(t *testing.T) {
	n := testNetwork()
	roundTrip := func(in map[string]any, out any) {
		t.Helper()
		b, err := yaml.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(b, out); err != nil {
			t.Fatal(err)
		}
	}
	fc := flow.DefaultConfig()
	roundTrip(map[string]any{"networks": n.FlowNetworks(), "exporters": n.FlowExporters()}, &fc)
	r := config.NewReporter()
	fc.Validate(r)
	if err := r.Err(); err != nil {
		t.Errorf("flows section: %v", err)
	}
	if len(fc.Networks) != len(RegionNames)+len(internetPrefixes) || len(fc.Exporters) != len(RegionNames) {
		t.Errorf("flows section has %d networks and %d exporters", len(fc.Networks), len(fc.Exporters))
	}
	wc := firewall.DefaultConfig()
	roundTrip(map[string]any{"devices": n.FirewallDevices(), "networks": n.FirewallNetworks()}, &wc)
	r = config.NewReporter()
	wc.Validate(r)
	if err := r.Err(); err != nil {
		t.Errorf("firewall section: %v", err)
	}
	if len(wc.Devices) != len(RegionNames) || wc.Devices[0].Region != RegionNames[0] {
		t.Errorf("firewall devices %+v", wc.Devices)
	}
}
