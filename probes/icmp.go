package probes

import (
	"context"
	"net"
	"os"
	"sort"
	"sync"
	"time"

	probing "github.com/prometheus-community/pro-bing"
)

// ICMP runs one echo round through github.com/prometheus-community/pro-bing:
// a privileged raw socket when running as root, an unprivileged datagram
// ICMP socket otherwise; IPv4 and IPv6. It opens its own socket per round,
// which is simple and right for one-shot probes (`meridian-agent probe`) and
// small target sets; the agent daemon sends large sets through the
// shared-socket engine (probes/icmpengine) instead.
//
// Params: size (payload bytes, default 24), network ("ip4" or "ip6" to force
// a family).
type ICMP struct{ Metrics *Metrics }

// Probe implements Prober.
func (p *ICMP) Probe(ctx context.Context, c Check) Result {
	c = c.WithDefaults()
	start := time.Now()
	pinger, err := probing.NewPinger(c.Target)
	if err != nil {
		reason := Reason(err)
		if _, ok := err.(*net.DNSError); ok || reason == "error" {
			reason = "dns"
		}
		p.Metrics.Count(TypeICMP, reason, 1)
		return finish(c, start, "", c.Count, nil, 0, 0, reason)
	}
	if n := c.Param("network", ""); n == "ip4" || n == "ip6" {
		pinger.SetNetwork(n)
	}
	pinger.SetPrivileged(os.Geteuid() == 0)
	pinger.Count = c.Count
	pinger.Interval = c.Spacing
	pinger.Timeout = time.Duration(c.Count-1)*c.Spacing + c.Timeout
	pinger.RecordRtts = false
	pinger.SetLogger(probing.NoopLogger{})
	sendErrs := 0
	pinger.OnSendError = func(*probing.Packet, error) { sendErrs++ }
	var mu sync.Mutex
	type pkt struct {
		seq int
		rtt time.Duration
	}
	var got []pkt
	seen := map[int]bool{}
	reord, maxSeq := 0, -1
	pinger.OnRecv = func(pk *probing.Packet) {
		mu.Lock()
		defer mu.Unlock()
		if seen[pk.Seq] {
			return
		}
		seen[pk.Seq] = true
		got = append(got, pkt{pk.Seq, pk.Rtt})
		if pk.Seq < maxSeq {
			reord++
		} else {
			maxSeq = pk.Seq
		}
	}
	err = pinger.RunWithContext(ctx)
	st := pinger.Statistics()
	addr := ""
	if ip := pinger.IPAddr(); ip != nil {
		addr = ip.IP.String()
	}
	if err != nil {
		reason := Reason(err)
		p.Metrics.Count(TypeICMP, reason, 1)
		return finish(c, start, addr, c.Count, nil, 0, 0, reason)
	}
	mu.Lock()
	defer mu.Unlock()
	sort.Slice(got, func(i, j int) bool { return got[i].seq < got[j].seq })
	rtts := make([]time.Duration, len(got))
	for i, g := range got {
		rtts[i] = g.rtt
	}
	sent := st.PacketsSent
	if sent < len(rtts) {
		sent = len(rtts)
	}
	p.Metrics.Count(TypeICMP, "send_error", sendErrs)
	reason := ""
	if len(rtts) == 0 {
		reason = "timeout"
		p.Metrics.Count(TypeICMP, reason, 1)
	}
	return finish(c, start, addr, sent, rtts, st.PacketsRecvDuplicates, reord, reason)
}
