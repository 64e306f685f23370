package runbooks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// dnsServer sends TSIG-signed RFC 2136 updates to one authoritative server.
type dnsServer struct {
	name    string
	addr    string
	zone    string
	keyName string
	algo    string
	secret  string // base64; never logged
	timeout time.Duration
}

func newDNSServer(name string, c DNSServer) (*dnsServer, error) {
	sec, err := c.TSIGSecret.Resolve()
	if err != nil {
		return nil, fmt.Errorf("dns server %s: tsig_secret: %w", name, err)
	}
	t := c.Timeout
	if t == 0 {
		t = 3 * time.Second
	}
	return &dnsServer{name: name, addr: c.Addr, zone: dns.Fqdn(strings.ToLower(c.Zone)),
		keyName: dns.Fqdn(strings.ToLower(c.TSIGName)), algo: tsigAlgorithm(c.TSIGAlgorithm), secret: sec, timeout: t}, nil
}

func (s *dnsServer) exchange(ctx context.Context, m *dns.Msg) (*dns.Msg, error) {
	m.SetTsig(s.keyName, s.algo, 300, time.Now().Unix())
	c := &dns.Client{Net: "tcp", Timeout: s.timeout, TsigSecret: map[string]string{s.keyName: s.secret}}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	r, _, err := c.ExchangeContext(ctx, m, s.addr)
	if err != nil {
		return nil, fmt.Errorf("dns server %s (%s): %w", s.name, s.addr, err)
	}
	return r, nil
}

// query reads an RRset straight from the authoritative server.
func (s *dnsServer) query(ctx context.Context, name string, t uint16) ([]dns.RR, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, t)
	m.RecursionDesired = false
	r, err := s.exchange(ctx, m)
	if err != nil {
		return nil, err
	}
	if r.Rcode != dns.RcodeSuccess && r.Rcode != dns.RcodeNameError {
		return nil, fmt.Errorf("dns server %s: query %s %s: %s", s.name, name, dns.TypeToString[t], dns.RcodeToString[r.Rcode])
	}
	var out []dns.RR
	for _, rr := range r.Answer {
		h := rr.Header()
		if h.Rrtype == t && strings.EqualFold(h.Name, name) {
			out = append(out, rr)
		}
	}
	return out, nil
}

// errConcurrentChange is a failed update prerequisite: someone else changed
// the records since Meridian read them; nothing was changed.
var errConcurrentChange = errors.New("the records changed since they were read (prerequisite failed); nothing was changed")

func (s *dnsServer) update(ctx context.Context, m *dns.Msg) error {
	r, err := s.exchange(ctx, m)
	if err != nil {
		return err
	}
	switch r.Rcode {
	case dns.RcodeSuccess:
		return nil
	case dns.RcodeNXRrset, dns.RcodeYXRrset, dns.RcodeNameError, dns.RcodeYXDomain:
		return fmt.Errorf("dns server %s: update of zone %s: %s: %w", s.name, s.zone, dns.RcodeToString[r.Rcode], errConcurrentChange)
	}
	return fmt.Errorf("dns server %s: update of zone %s refused: %s", s.name, s.zone, dns.RcodeToString[r.Rcode])
}

// dnsAction is a planned DNS step.
type dnsAction struct {
	srv      *dnsServer
	op       string
	name     string
	rrtype   uint16
	ttl      uint32
	values   []string
	copyFrom string

	saved   []dns.RR // the RRset before Apply
	applied []dns.RR // the RRset Apply wrote
}

func (a *dnsAction) Kind() string { return "dns" }

func (a *dnsAction) Describe() string {
	t := dns.TypeToString[a.rrtype]
	switch a.op {
	case "set_ttl":
		return fmt.Sprintf("dns %s: UPDATE zone %s: set the TTL of %s %s to %d, if its records are unchanged", a.srv.name, a.srv.zone, a.name, t, a.ttl)
	default:
		what := fmt.Sprintf("%v", a.values)
		if a.copyFrom != "" {
			what = "the " + t + " records of " + a.copyFrom
		}
		ttl := "its current TTL"
		if a.ttl > 0 {
			ttl = fmt.Sprintf("TTL %d", a.ttl)
		}
		return fmt.Sprintf("dns %s: UPDATE zone %s: replace %s %s with %s (%s), if its records are unchanged", a.srv.name, a.srv.zone, a.name, t, what, ttl)
	}
}

func (a *dnsAction) newRR(v string, ttl uint32) (dns.RR, error) {
	h := dns.RR_Header{Name: a.name, Rrtype: a.rrtype, Class: dns.ClassINET, Ttl: ttl}
	switch a.rrtype {
	case dns.TypeA:
		return &dns.A{Hdr: h, A: net.ParseIP(v).To4()}, nil
	case dns.TypeAAAA:
		return &dns.AAAA{Hdr: h, AAAA: net.ParseIP(v)}, nil
	case dns.TypeCNAME:
		return &dns.CNAME{Hdr: h, Target: dns.Fqdn(v)}, nil
	}
	return nil, fmt.Errorf("unsupported type")
}

func (a *dnsAction) Apply(ctx context.Context) (string, error) {
	cur, err := a.srv.query(ctx, a.name, a.rrtype)
	if err != nil {
		return "", err
	}
	var next []dns.RR
	switch a.op {
	case "set_ttl":
		if len(cur) == 0 {
			return "", fmt.Errorf("no %s records at %s to change the TTL of", dns.TypeToString[a.rrtype], a.name)
		}
		for _, rr := range cur {
			c := dns.Copy(rr)
			c.Header().Ttl = a.ttl
			next = append(next, c)
		}
	case "replace":
		ttl := a.ttl
		if ttl == 0 && len(cur) > 0 {
			ttl = cur[0].Header().Ttl
		}
		if ttl == 0 {
			ttl = 300
		}
		if a.copyFrom != "" {
			src, err := a.srv.query(ctx, a.copyFrom, a.rrtype)
			if err != nil {
				return "", err
			}
			if len(src) == 0 {
				return "", fmt.Errorf("copy_from %s has no %s records; refusing to empty %s", a.copyFrom, dns.TypeToString[a.rrtype], a.name)
			}
			for _, rr := range src {
				c := dns.Copy(rr)
				c.Header().Name, c.Header().Ttl = a.name, ttl
				next = append(next, c)
			}
		} else {
			for _, v := range a.values {
				rr, err := a.newRR(v, ttl)
				if err != nil {
					return "", err
				}
				next = append(next, rr)
			}
		}
	}
	m := new(dns.Msg)
	m.SetUpdate(a.srv.zone)
	guard(m, a.name, a.rrtype, cur)
	m.RemoveRRset([]dns.RR{&dns.ANY{Hdr: dns.RR_Header{Name: a.name, Rrtype: a.rrtype, Class: dns.ClassINET}}})
	m.Insert(next)
	if err := a.srv.update(ctx, m); err != nil {
		return "", err
	}
	a.saved, a.applied = cur, next
	return fmt.Sprintf("%s %s: %s → %s", a.name, dns.TypeToString[a.rrtype], rrText(cur), rrText(next)), nil
}

// guard adds the prerequisite that the RRset is exactly cur (or absent).
func guard(m *dns.Msg, name string, t uint16, cur []dns.RR) {
	if len(cur) == 0 {
		m.RRsetNotUsed([]dns.RR{&dns.ANY{Hdr: dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET}}})
		return
	}
	// Used zeroes the TTLs of what it is given: hand it copies.
	cp := make([]dns.RR, len(cur))
	for i, rr := range cur {
		cp[i] = dns.Copy(rr)
	}
	m.Used(cp)
}

// Undo restores the saved RRset, unless someone changed the records since.
func (a *dnsAction) Undo(ctx context.Context) (string, error) {
	if a.applied == nil {
		return "nothing to restore", nil
	}
	m := new(dns.Msg)
	m.SetUpdate(a.srv.zone)
	guard(m, a.name, a.rrtype, a.applied)
	m.RemoveRRset([]dns.RR{&dns.ANY{Hdr: dns.RR_Header{Name: a.name, Rrtype: a.rrtype, Class: dns.ClassINET}}})
	if len(a.saved) > 0 {
		m.Insert(a.saved)
	}
	if err := a.srv.update(ctx, m); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s %s restored to %s", a.name, dns.TypeToString[a.rrtype], rrText(a.saved)), nil
}

func rrText(rrs []dns.RR) string {
	if len(rrs) == 0 {
		return "(none)"
	}
	parts := make([]string, len(rrs))
	for i, rr := range rrs {
		f := strings.Fields(rr.String())
		// name ttl class type rdata…
		if len(f) >= 5 {
			parts[i] = f[1] + " " + strings.Join(f[4:], " ")
		} else {
			parts[i] = rr.String()
		}
	}
	sort.Strings(parts)
	return "[" + strings.Join(parts, ", ") + "]"
}
