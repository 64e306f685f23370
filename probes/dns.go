package probes

import (
	"context"
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// DNS sends Count queries per round for the target name to a server and
// reports the query time as the RTT, the rcode as Status. A query fails
// (lost, reason counted) on a transport error, an rcode other than expected
// (default NOERROR: reason rcode), or when an expected answer is missing
// (reason answer).
//
// Params: server (HOST:PORT, required), qtype (A), proto (udp or tcp),
// expect_rcode (NOERROR), expect (a value that one answer record must
// contain, e.g. an address).
type DNS struct{ Metrics *Metrics }

// Probe implements Prober.
func (p *DNS) Probe(ctx context.Context, c Check) Result {
	c = c.WithDefaults()
	start := time.Now()
	server := c.Param("server", "")
	qtype, ok := dns.StringToType[strings.ToUpper(c.Param("qtype", "A"))]
	wantRcode, ok2 := dns.StringToRcode[strings.ToUpper(c.Param("expect_rcode", "NOERROR"))]
	if server == "" || !ok || !ok2 {
		p.Metrics.Count(TypeDNS, "bad_params", 1)
		return finish(c, start, "", c.Count, nil, 0, 0, "bad_params")
	}
	if _, _, err := net.SplitHostPort(server); err != nil {
		server = net.JoinHostPort(server, "53")
	}
	client := &dns.Client{Net: c.Param("proto", "udp"), Timeout: c.Timeout}
	var rtts []time.Duration
	var status uint16
	lastErr := ""
	addr := ""
	if h, _, err := net.SplitHostPort(server); err == nil {
		addr = h
	}
	for i := 0; i < c.Count; i++ {
		if i > 0 && !sleepCtx(ctx, c.Spacing) {
			break
		}
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(c.Target), qtype)
		m.RecursionDesired = true
		qctx, cancel := context.WithTimeout(ctx, c.Timeout)
		resp, rtt, err := client.ExchangeContext(qctx, m, server)
		cancel()
		if err != nil {
			lastErr = Reason(err)
			p.Metrics.Count(TypeDNS, lastErr, 1)
			continue
		}
		status = uint16(resp.Rcode)
		if resp.Rcode != wantRcode {
			lastErr = "rcode"
			p.Metrics.Count(TypeDNS, lastErr, 1)
			continue
		}
		if want := c.Param("expect", ""); want != "" && !answerHas(resp, want) {
			lastErr = "answer"
			p.Metrics.Count(TypeDNS, lastErr, 1)
			continue
		}
		rtts = append(rtts, rtt)
	}
	if len(rtts) == c.Count {
		lastErr = ""
	}
	r := finish(c, start, addr, c.Count, rtts, 0, 0, lastErr)
	r.Status = status
	return r
}

func answerHas(m *dns.Msg, want string) bool {
	for _, rr := range m.Answer {
		h := rr.Header().String()
		if strings.Contains(strings.TrimPrefix(rr.String(), h), want) {
			return true
		}
	}
	return false
}
