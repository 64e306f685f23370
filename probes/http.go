package probes

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync"
	"time"
)

// HTTP fetches a URL Count times per round (a new connection each time, so
// every phase is measured) and reports the phases of the last successful
// request in milliseconds: dns, connect, tls, ttfb (request written → first
// response byte), total; and cert_expiry_days for https. The RTT of a request
// is its total time. A request fails (counts as lost, reason counted) on a
// transport error, an unexpected status, or a body check mismatch.
//
// Params: method (GET), expect_status ("200-399", or a list "200,204"),
// body_contains, insecure_skip_verify ("true"), host (Host header),
// max_body_bytes (1048576).
type HTTP struct {
	Metrics *Metrics
	// TLSConfig is cloned for every request when set (tests add a CA).
	TLSConfig *tls.Config
}

// Probe implements Prober.
func (p *HTTP) Probe(ctx context.Context, c Check) Result {
	c = c.WithDefaults()
	start := time.Now()
	var rtts []time.Duration
	var last Result
	lastErr, addr := "", ""
	var status uint16
	var phases []Phase
	for i := 0; i < c.Count; i++ {
		if i > 0 && !sleepCtx(ctx, c.Spacing) {
			break
		}
		ph, st, a, total, reason := p.once(ctx, c)
		if st != 0 {
			status = st
		}
		if a != "" {
			addr = a
		}
		if reason != "" {
			lastErr = reason
			p.Metrics.Count(TypeHTTP, reason, 1)
			continue
		}
		phases = ph
		rtts = append(rtts, total)
	}
	if len(rtts) == c.Count {
		lastErr = ""
	}
	last = finish(c, start, addr, c.Count, rtts, 0, 0, lastErr)
	last.Status = status
	last.Phases = phases
	return last
}

func (p *HTTP) once(ctx context.Context, c Check) (phases []Phase, status uint16, addr string, total time.Duration, reason string) {
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	// The trace callbacks may run on the dialer's goroutine even after Do
	// returned (a timed-out dial finishing late): guard what they write.
	var mu sync.Mutex
	var dnsStart, dnsDone, connStart, connDone, tlsStart, tlsDone, wrote, firstByte time.Time
	var connAddr string
	at := func(p *time.Time) func() {
		return func() { mu.Lock(); *p = time.Now(); mu.Unlock() }
	}
	trace := &httptrace.ClientTrace{
		DNSStart:     func(httptrace.DNSStartInfo) { at(&dnsStart)() },
		DNSDone:      func(httptrace.DNSDoneInfo) { at(&dnsDone)() },
		ConnectStart: func(string, string) { at(&connStart)() },
		ConnectDone: func(_, a string, err error) {
			mu.Lock()
			defer mu.Unlock()
			connDone = time.Now()
			if err == nil {
				if h, e := netipAddrPort(a); e == nil {
					connAddr = h
				}
			}
		},
		TLSHandshakeStart:    at(&tlsStart),
		TLSHandshakeDone:     func(tls.ConnectionState, error) { at(&tlsDone)() },
		WroteRequest:         func(httptrace.WroteRequestInfo) { at(&wrote)() },
		GotFirstResponseByte: at(&firstByte),
	}
	snapshot := func() {
		mu.Lock()
		addr = connAddr
		mu.Unlock()
	}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), c.Param("method", http.MethodGet), c.Target, nil)
	if err != nil {
		return nil, 0, "", 0, "bad_target"
	}
	if h := c.Param("host", ""); h != "" {
		req.Host = h
	}
	tcfg := &tls.Config{}
	if p.TLSConfig != nil {
		tcfg = p.TLSConfig.Clone()
	}
	if c.Param("insecure_skip_verify", "") == "true" {
		tcfg.InsecureSkipVerify = true
	}
	tr := &http.Transport{DisableKeepAlives: true, TLSClientConfig: tcfg, Proxy: nil}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	t0 := time.Now()
	resp, err := client.Do(req)
	snapshot()
	if err != nil {
		r := Reason(err)
		if r == "error" && strings.Contains(err.Error(), "tls") || strings.Contains(err.Error(), "x509") || strings.Contains(err.Error(), "certificate") {
			r = "tls"
		}
		return nil, 0, addr, 0, r
	}
	defer resp.Body.Close()
	limit, _ := strconv.ParseInt(c.Param("max_body_bytes", "1048576"), 10, 64)
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	end := time.Now()
	status = uint16(resp.StatusCode)
	if err != nil {
		return nil, status, addr, 0, Reason(err)
	}
	total = end.Sub(t0)
	mu.Lock()
	defer mu.Unlock()
	add := func(name string, a, b time.Time) {
		if !a.IsZero() && !b.IsZero() {
			phases = append(phases, Phase{name, float64(b.Sub(a)) / float64(time.Millisecond)})
		}
	}
	add("dns", dnsStart, dnsDone)
	add("connect", connStart, connDone)
	add("tls", tlsStart, tlsDone)
	add("ttfb", wrote, firstByte)
	phases = append(phases, Phase{"total", float64(total) / float64(time.Millisecond)})
	if resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 {
		days := time.Until(resp.TLS.PeerCertificates[0].NotAfter).Hours() / 24
		phases = append(phases, Phase{"cert_expiry_days", days})
	}
	if !statusOK(resp.StatusCode, c.Param("expect_status", "200-399")) {
		return phases, status, addr, total, "status"
	}
	if want := c.Param("body_contains", ""); want != "" && !bytes.Contains(body, []byte(want)) {
		return phases, status, addr, total, "body"
	}
	return phases, status, addr, total, ""
}

// statusOK matches code against "200-399" or "200,204" style lists.
func statusOK(code int, spec string) bool {
	for _, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		if lo, hi, ok := strings.Cut(part, "-"); ok {
			l, e1 := strconv.Atoi(lo)
			h, e2 := strconv.Atoi(hi)
			if e1 == nil && e2 == nil && code >= l && code <= h {
				return true
			}
			continue
		}
		if v, err := strconv.Atoi(part); err == nil && v == code {
			return true
		}
	}
	return false
}

func netipAddrPort(a string) (string, error) {
	host, _, err := net.SplitHostPort(a)
	if err != nil {
		return "", err
	}
	return host, nil
}
