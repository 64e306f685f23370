package flow

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/meridian-obs/meridian/internal/config"
)

func TestLPM(t *testing.T) {
	var l lpm
	for i, p := range []string{"0.0.0.0/0", "10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "10.1.2.3/32", "2001:db8::/32", "2001:db8:1::/48", "::/0"} {
		l.Insert(netip.MustParsePrefix(p), int32(i))
	}
	for _, tc := range []struct {
		addr string
		want int32
	}{
		{"192.0.2.1", 0}, {"10.9.9.9", 1}, {"10.1.9.9", 2}, {"10.1.2.4", 3}, {"10.1.2.3", 4},
		{"::ffff:10.1.2.3", 4}, {"2001:db8:2::1", 5}, {"2001:db8:1:ffff::1", 6}, {"fe80::1", 7},
	} {
		if got := l.Lookup(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("%s: got %d, want %d", tc.addr, got, tc.want)
		}
	}
	var empty lpm
	if got := empty.Lookup(netip.MustParseAddr("10.0.0.1")); got != -1 {
		t.Errorf("empty table: %d", got)
	}
	if got := empty.Lookup(netip.Addr{}); got != -1 {
		t.Errorf("invalid address: %d", got)
	}
	if n := testing.AllocsPerRun(100, func() { l.Lookup(netip.MustParseAddr("2001:db8:1::1")) }); n != 0 {
		t.Errorf("lookup allocates %v times", n)
	}
}

func BenchmarkLPM(b *testing.B) {
	var l lpm
	for i := range 1000 {
		l.Insert(netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24), int32(i))
	}
	a := netip.MustParseAddr("10.3.200.7")
	for b.Loop() {
		l.Lookup(a)
	}
}

func TestValidate(t *testing.T) {
	good := testNetworks()
	r := config.NewReporter()
	good.Validate(r)
	if err := r.Err(); err != nil {
		t.Fatalf("good config: %v", err)
	}
	bad := DefaultConfig()
	bad.NetFlowListen = "localhost"
	bad.Readers = 0
	bad.Networks = []Network{{Prefix: "10.0.0.0/33"}, {Prefix: "10.0.0.0/8"}, {Prefix: "10.0.0.1/8"}}
	bad.Exporters = []Exporter{{Addr: "x"}, {Addr: "127.0.0.1", Interfaces: map[uint32]string{3: ""}}}
	r = config.NewReporter()
	bad.Validate(r)
	err := r.Err()
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{"netflow_listen", "readers", "networks[0].prefix", "networks[2].prefix: prefix 10.0.0.0/8 listed twice", "exporters[0].addr", "exporters[1].interfaces.3"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
}
