package runbooks

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

const bgpRunbook = `
runbooks:
  - name: edge-reroute
    trigger: {match: 'slo=edge-latency, region=~".+"'}
    restore_on_resolve: true
    %s
    params:
      region: '{{ .Labels.region }}'
    steps:
      - name: prepend
        bgp: {op: announce, prefix: '203.0.113.0/24', prepend: 3, communities: ['65001:666'], med: 50}
      - name: announce-backup
        bgp: {op: announce, prefix: '198.51.100.0/25', communities: ['65001:200']}
      - name: withdraw
        bgp: {op: withdraw, prefix: '192.0.2.0/24'}
`

func bgpSetup(t *testing.T, extra string) (*fixture, *gobgpPeer, *receiver) {
	speakerAddr := fmt.Sprintf("127.0.%d.%d", 1+rand.IntN(90), 2+rand.IntN(250))
	// eBGP; the next hop is set explicitly (not a loopback address, which
	// gobgpd refuses) and GoBGP keeps an explicit next hop of local paths.
	g := startGoBGP(t, 65002, 65001, speakerAddr)
	rc := newReceiver(t)
	cfg := webhookConfig(t, rc)
	cfg.BGP = BGPConfig{ASN: 65001, RouterID: speakerAddr, ListenPort: -1, NextHop: "198.18.0.1",
		Peers:           []BGPPeer{{Address: g.addr, ASN: g.asn, Port: uint32(g.port), LocalAddress: speakerAddr}},
		NextHop6:        "2001:db8::1",
		AllowedPrefixes: []string{"203.0.113.0/24", "198.51.100.0/24", "192.0.2.0/24", "2001:db8:100::/40"},
		Announce: []BGPRoute{
			{Prefix: "203.0.113.0/24", Communities: []string{"65001:100"}},
			{Prefix: "192.0.2.0/24"},
		}}
	f := newFixture(t, cfg, newStatus([]string{"eu", "us"}, "eu"), strings.Replace(bgpRunbook, "%s", extra, 1))
	t0 := time.Now()
	g.waitRIB(t, "203.0.113.0/24", "the steady-state announcement", func(l string) bool { return strings.Contains(l, "65001:100") })
	t.Logf("session up and steady state in the peer's RIB after %s", time.Since(t0))
	return f, g, rc
}

func TestBGPRerouteAndRestore(t *testing.T) {
	f, g, _ := bgpSetup(t, "")
	if l := g.rib(t, "192.0.2.0/24"); l == "" {
		t.Fatal("steady-state 192.0.2.0/24 not in the peer's RIB")
	}
	id := f.fire(t, "edge-reroute", "fp1", labels("eu"))
	f.wait(t, id, StateSucceeded)
	// eBGP: the peer sees the speaker's AS once plus three prepends.
	l := g.waitRIB(t, "203.0.113.0/24", "the prepend", func(l string) bool { return strings.Contains(l, "65001 65001 65001 65001") })
	if !strings.Contains(l, "65001:666") || strings.Contains(l, "65001:100") || !strings.Contains(l, "Med: 50") {
		t.Errorf("prepended route attributes: %q", l)
	}
	g.waitRIB(t, "198.51.100.0/25", "the new announcement", func(l string) bool { return strings.Contains(l, "65001:200") })
	g.waitRIB(t, "192.0.2.0/24", "the withdrawal", func(l string) bool { return l == "" })
	f.e.HandleAlert(Alert{Labels: labels("eu"), Status: StatusResolved, Fingerprint: "fp1"})
	run := f.wait(t, id, StateRestored)
	l = g.waitRIB(t, "203.0.113.0/24", "the restored path", func(l string) bool { return strings.Contains(l, "65001:100") })
	if strings.Contains(l, "65001 65001") || strings.Contains(l, "65001:666") || !strings.Contains(l, " 65001 ") {
		t.Errorf("restored route still prepended: %q", l)
	}
	g.waitRIB(t, "198.51.100.0/25", "the backup withdrawn", func(l string) bool { return l == "" })
	g.waitRIB(t, "192.0.2.0/24", "the re-announcement", func(l string) bool { return l != "" })
	if !hasAudit(run, "undo", "ok", "203.0.113.0/24 re-announced with prepend 0, communities [65001:100]") {
		t.Errorf("restore not audited:%s", auditText(run))
	}
}

func TestBGPDryRunChangesNothing(t *testing.T) {
	f, g, _ := bgpSetup(t, "dry_run: true")
	before := g.rib(t, "203.0.113.0/24")
	f.wait(t, f.fire(t, "edge-reroute", "fp1", labels("eu")), StateDryRun)
	time.Sleep(500 * time.Millisecond)
	if l := g.rib(t, "203.0.113.0/24"); l != before && !sameRoute(l, before) {
		t.Errorf("dry run changed the peer's RIB: %q → %q", before, l)
	}
	if g.rib(t, "198.51.100.0/25") != "" || g.rib(t, "192.0.2.0/24") == "" {
		t.Error("dry run announced or withdrew a prefix")
	}
}

// sameRoute compares RIB lines without the age column.
func sameRoute(a, b string) bool {
	strip := func(s string) string {
		var out []string
		for _, f := range strings.Fields(s) {
			if strings.Count(f, ":") == 2 && len(f) == 8 {
				continue
			}
			out = append(out, f)
		}
		return strings.Join(out, " ")
	}
	return strip(a) == strip(b)
}

func TestBGPPeerDownFailsAndUndoes(t *testing.T) {
	rcYAML := `
runbooks:
  - name: reroute
    trigger: {match: 'slo=edge-latency'}
    steps:
      - name: notify
        webhook: {endpoint: ops}
      - name: prepend
        bgp: {op: announce, prefix: '203.0.113.0/24', prepend: 2}
`
	f, g, rc := bgpSetup(t, "")
	rbs, err := Parse("peerdown.yaml", []byte(rcYAML), &f.e.cfg)
	must(t, err)
	f.e.SetRunbooks(rbs)
	g.proc.stop()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		st, _ := f.e.Speaker().PeerStates(t.Context())
		if st[g.addr] != "ESTABLISHED" {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	run := f.wait(t, f.fire(t, "reroute", "fp1", labels("eu")), StateRolledBack)
	if !strings.Contains(run.Reason, "step prepend failed: bgp: peer not established") {
		t.Errorf("reason %q", run.Reason)
	}
	evs := rc.got()
	if len(evs) != 2 || evs[1].Phase != "undo" {
		t.Errorf("webhook events %+v: the undo of the earlier step did not run", evs)
	}
	if r, _ := f.e.Speaker().Route(mustPrefix("203.0.113.0/24")); r.Prepend != 0 {
		t.Errorf("speaker state changed: %+v", r)
	}
	if len(f.escalations()) != 1 {
		t.Errorf("escalations %d, want 1", len(f.escalations()))
	}
}

func TestBGPIPv6AnnounceWithdraw(t *testing.T) {
	f, g, _ := bgpSetup(t, "")
	sp := f.e.Speaker()
	must(t, sp.Announce(t.Context(), BGPRoute{Prefix: "2001:db8:100::/48", Prepend: 1, Communities: []string{"65001:6"}}))
	l := g.waitRIB(t, "2001:db8:100::/48", "the IPv6 announcement", func(l string) bool { return strings.Contains(l, "65001:6") })
	if !strings.Contains(l, "2001:db8::1") || !strings.Contains(l, "65001 65001") {
		t.Errorf("IPv6 route: %q", l)
	}
	must(t, sp.Withdraw(t.Context(), "2001:db8:100::/48"))
	g.waitRIB(t, "2001:db8:100::/48", "the IPv6 withdrawal", func(l string) bool { return l == "" })
	if err := sp.Announce(t.Context(), BGPRoute{Prefix: "2001:db8:200::/48"}); err == nil || !strings.Contains(err.Error(), "outside the allowed prefixes") {
		t.Errorf("announce outside the allowed set: %v", err)
	}
}
