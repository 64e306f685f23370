// Package agent is the meridian-agent daemon: it registers with the
// server, pulls and refreshes its assignments, runs every check on its own
// schedule (start times spread by a hash of agent and check name on a 10 ms
// grid, so neither the agents nor the checks of one agent fire together),
// batches the results into a bounded disk spool and delivers the spool in
// order over HTTP(S) with its bearer token, exactly once: every batch has an
// id the server deduplicates on. It never links the ClickHouse driver.
package agent

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/meridian-obs/meridian/internal/httpx"
	"github.com/meridian-obs/meridian/probes"
	"github.com/meridian-obs/meridian/probes/api"
	"github.com/meridian-obs/meridian/probes/icmpengine"
)

// Version is reported at registration.
var Version = "dev"

// Deps of the agent.
type Deps struct {
	Log *slog.Logger
	// Registry for the agent's metrics; nil creates one (served on
	// metrics_listen).
	Registry *prometheus.Registry
	// Probers replaces the prober of a type (tests).
	Probers map[string]probes.Prober
}

// Agent is the daemon component.
type Agent struct {
	cfg         Config
	log         *slog.Logger
	reg         *prometheus.Registry
	pm          *probes.Metrics
	probers     map[string]probes.Prober
	engine      *icmpengine.Engine
	client      *http.Client
	token       string
	spool       *spool
	metricsSrv  *http.Server
	metricsAddr string

	results chan probes.Result
	kick    chan struct{}

	mu        sync.Mutex
	running   map[string]*runningCheck
	stopping  bool
	collected chan struct{}
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup // loops
	checkWG   sync.WaitGroup // checks

	m agentMetrics
}

type runningCheck struct {
	def    string
	cancel context.CancelFunc
}

type agentMetrics struct {
	results    *prometheus.CounterVec
	batches    *prometheus.CounterVec
	spoolDrop  prometheus.Counter
	sendErrors *prometheus.CounterVec
	checks     prometheus.Gauge
}

// New builds the agent; no I/O.
func New(cfg Config, deps Deps) (*Agent, error) {
	log := deps.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	reg := deps.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	a := &Agent{cfg: cfg, log: log.With("component", "agent"), reg: reg, pm: probes.NewMetrics(reg),
		results: make(chan probes.Result, 1024), kick: make(chan struct{}, 1), running: map[string]*runningCheck{},
		probers: map[string]probes.Prober{}}
	a.m = agentMetrics{
		results: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meridian_agent_results_total",
			Help: "Probe rounds completed by type."}, []string{"type"}),
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meridian_agent_batches_total",
			Help: "Result batches by delivery outcome (delivered, duplicate, rejected)."}, []string{"outcome"}),
		spoolDrop: prometheus.NewCounter(prometheus.CounterOpts{Name: "meridian_agent_spool_dropped_results_total",
			Help: "Results dropped because the spool was full (oldest first) or unreadable."}),
		sendErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meridian_agent_send_errors_total",
			Help: "Failed requests to the server by reason (unreachable, status_5xx, unauthorized, …)."}, []string{"reason"}),
		checks: prometheus.NewGauge(prometheus.GaugeOpts{Name: "meridian_agent_checks",
			Help: "Checks currently scheduled."}),
	}
	reg.MustRegister(a.m.results, a.m.batches, a.m.spoolDrop, a.m.sendErrors, a.m.checks,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "meridian_agent_spool_batches", Help: "Batches waiting in the spool."},
			func() float64 {
				if a.spool == nil {
					return 0
				}
				n, _ := a.spool.stats()
				return float64(n)
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "meridian_agent_spool_bytes", Help: "Bytes in the spool."},
			func() float64 {
				if a.spool == nil {
					return 0
				}
				_, b := a.spool.stats()
				return float64(b)
			}))
	for t, p := range deps.Probers {
		a.probers[t] = p
	}
	return a, nil
}

// Registry returns the agent's metrics registry.
func (a *Agent) Registry() *prometheus.Registry { return a.reg }

// MetricsAddr is the bound /metrics address ("" when disabled).
func (a *Agent) MetricsAddr() string { return a.metricsAddr }

// Start opens the spool, the ICMP engine and the metrics listener and starts
// the loops. It does not wait for the server: an unreachable server only
// delays the assignments (the last ones known are reused from the spool
// directory).
func (a *Agent) Start(ctx context.Context) error {
	tok, err := a.cfg.Token.Resolve()
	if err != nil {
		return fmt.Errorf("agent token: %w", err)
	}
	a.token = tok
	if a.client, err = a.httpClient(); err != nil {
		return err
	}
	if a.spool, err = openSpool(a.cfg.SpoolDir, a.cfg.SpoolMaxBytes); err != nil {
		return err
	}
	for _, t := range probes.Types {
		if _, ok := a.probers[t]; ok {
			continue
		}
		p, _ := probes.New(t, a.pm)
		a.probers[t] = p
	}
	if _, ok := a.probers[probes.TypeICMP].(*probes.ICMP); ok && a.cfg.ICMPEngine != "probing" {
		e, err := icmpengine.Open(a.pm)
		switch {
		case err == nil:
			a.engine = e
			a.probers[probes.TypeICMP] = e
			a.reg.MustRegister(
				prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "meridian_agent_icmp_engine_sent_total",
					Help: "Echo requests sent by the shared-socket ICMP engine."},
					func() float64 { s, _, _ := e.Stats(); return float64(s) }),
				prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "meridian_agent_icmp_engine_received_total",
					Help: "Echo replies matched by the shared-socket ICMP engine."},
					func() float64 { _, r, _ := e.Stats(); return float64(r) }),
				prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "meridian_agent_icmp_engine_queued",
					Help: "Echo requests waiting to be sent."},
					func() float64 { return float64(e.Queued()) }))
		case a.cfg.ICMPEngine == "engine":
			return fmt.Errorf("agent: icmp_engine is engine: %w", err)
		default:
			a.log.Info("shared-socket ICMP engine unavailable; using pro-bing per round", "err", err)
		}
	}
	if a.cfg.MetricsListen != "" {
		l, err := net.Listen("tcp", a.cfg.MetricsListen)
		if err != nil {
			return fmt.Errorf("agent: metrics listener: %w", err)
		}
		a.metricsAddr = l.Addr().String()
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{}))
		a.metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = a.metricsSrv.Serve(l) }()
	}
	a.ctx, a.cancel = context.WithCancel(context.Background())
	if cached, err := a.loadAssignments(); err == nil {
		a.apply(cached.Checks)
	}
	a.collected = make(chan struct{})
	a.wg.Add(2)
	go a.assignmentsLoop()
	go a.collectLoop()
	go a.sendLoop()
	return nil
}

// Stop stops the checks, spools what was measured, then tries to deliver
// the spool until ctx ends; what is left stays in the spool for next time.
func (a *Agent) Stop(ctx context.Context) error {
	if a.cancel == nil {
		return nil
	}
	a.mu.Lock()
	a.stopping = true
	for name, rc := range a.running {
		rc.cancel()
		delete(a.running, name)
	}
	a.mu.Unlock()
	a.checkWG.Wait()
	close(a.results) // collectLoop spools the rest and exits
	<-a.collected
	// The send loop drains the spool until it is empty or ctx ends.
	for {
		if n, _ := a.spool.stats(); n == 0 {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
			continue
		}
		break
	}
	a.cancel()
	a.wg.Wait()
	if a.engine != nil {
		a.engine.Close()
	}
	if a.metricsSrv != nil {
		_ = a.metricsSrv.Shutdown(ctx)
	}
	return nil
}

func (a *Agent) httpClient() (*http.Client, error) {
	tcfg := &tls.Config{ServerName: a.cfg.TLS.ServerName}
	if a.cfg.TLS.CACert != "" {
		pem, err := os.ReadFile(a.cfg.TLS.CACert)
		if err != nil {
			return nil, fmt.Errorf("agent: tls.ca_cert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("agent: tls.ca_cert %s: no PEM certificate", a.cfg.TLS.CACert)
		}
		tcfg.RootCAs = pool
	}
	if a.cfg.TLS.ClientCert != "" {
		certPEM, err := os.ReadFile(a.cfg.TLS.ClientCert)
		if err != nil {
			return nil, fmt.Errorf("agent: tls.client_cert: %w", err)
		}
		keyPEM, err := a.cfg.TLS.ClientKey.Resolve()
		if err != nil {
			return nil, fmt.Errorf("agent: tls.client_key: %w", err)
		}
		cert, err := tls.X509KeyPair(certPEM, []byte(keyPEM))
		if err != nil {
			return nil, errors.New("agent: tls client certificate and key do not form a pair")
		}
		tcfg.Certificates = []tls.Certificate{cert}
	}
	tr := &http.Transport{TLSClientConfig: tcfg, Proxy: http.ProxyFromEnvironment, MaxIdleConns: 4,
		IdleConnTimeout: 90 * time.Second, DisableCompression: true}
	return &http.Client{Transport: tr, Timeout: a.cfg.RequestTimeout}, nil
}

// request sends one API request; status 0 means unreachable.
func (a *Agent) request(ctx context.Context, method, path string, body []byte, hdr map[string]string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(a.cfg.Server, "/")+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("User-Agent", "meridian-agent/"+Version)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	// Assignments of 10,000 checks are a few MB of JSON.
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	return resp.StatusCode, data, nil
}

func errCode(data []byte) string {
	var eb httpx.ErrorBody
	_ = json.Unmarshal(data, &eb)
	return eb.Error.Code
}

func (a *Agent) register(ctx context.Context) (api.Assignments, error) {
	body, _ := json.Marshal(api.Register{Name: a.cfg.Name, Region: a.cfg.Region, Site: a.cfg.Site, Labels: a.cfg.Labels, Version: Version})
	st, data, err := a.request(ctx, http.MethodPost, api.PathRegister, body, map[string]string{"Content-Type": "application/json"})
	return a.decodeAssignments(st, data, err)
}

func (a *Agent) decodeAssignments(st int, data []byte, err error) (api.Assignments, error) {
	var as api.Assignments
	if err != nil {
		a.m.sendErrors.WithLabelValues("unreachable").Inc()
		return as, fmt.Errorf("server unreachable: %w", err)
	}
	if st != http.StatusOK {
		a.m.sendErrors.WithLabelValues(statusReason(st)).Inc()
		return as, &statusError{st, errCode(data)}
	}
	if err := json.Unmarshal(data, &as); err != nil {
		a.m.sendErrors.WithLabelValues("bad_response").Inc()
		return as, fmt.Errorf("bad assignments: %w", err)
	}
	return as, nil
}

type statusError struct {
	status int
	code   string
}

func (e *statusError) Error() string { return fmt.Sprintf("server answered %d %s", e.status, e.code) }

func statusReason(st int) string {
	switch {
	case st == http.StatusUnauthorized || st == http.StatusForbidden:
		return "unauthorized"
	case st == http.StatusConflict:
		return "not_registered"
	case st >= 500:
		return "status_5xx"
	default:
		return "status_4xx"
	}
}

// assignmentsLoop registers, then refreshes the assignments.
func (a *Agent) assignmentsLoop() {
	defer a.wg.Done()
	backoff := a.cfg.RetryMin
	registered := false
	refresh := time.Minute
	for {
		var as api.Assignments
		var err error
		if !registered {
			as, err = a.register(a.ctx)
		} else {
			st, data, rerr := a.request(a.ctx, http.MethodGet, api.PathAssignments, nil, nil)
			as, err = a.decodeAssignments(st, data, rerr)
		}
		wait := refresh
		if err != nil {
			var se *statusError
			if errors.As(err, &se) && se.code == api.CodeNotRegistered {
				registered = false
			}
			if a.ctx.Err() == nil {
				a.log.Warn("assignments", "err", err, "retry_in", backoff)
			}
			wait = backoff
			backoff = min(backoff*2, a.cfg.RetryMax)
		} else {
			if !registered {
				a.log.Info("registered", "server", a.cfg.Server, "checks", len(as.Checks))
			}
			registered = true
			backoff = a.cfg.RetryMin
			if as.RefreshNs > 0 {
				refresh = time.Duration(as.RefreshNs)
			}
			wait = refresh
			a.apply(as.Checks)
			a.saveAssignments(as)
		}
		select {
		case <-a.ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

func (a *Agent) assignmentsPath() string { return filepath.Join(a.cfg.SpoolDir, "assignments.json") }

func (a *Agent) saveAssignments(as api.Assignments) {
	data, _ := json.Marshal(as)
	_ = writeFileAtomic(a.assignmentsPath(), data)
}

func (a *Agent) loadAssignments() (api.Assignments, error) {
	var as api.Assignments
	data, err := os.ReadFile(a.assignmentsPath())
	if err != nil {
		return as, err
	}
	return as, json.Unmarshal(data, &as)
}

// unit is what one scheduling goroutine runs: one check, or (with the ICMP
// engine) every ICMP check sharing count, spacing, timeout, interval and
// start slot, probed together with one ProbeMany call per round.
type unit struct {
	checks []probes.Check
	offset time.Duration
}

// apply starts new and changed checks and stops removed ones.
func (a *Agent) apply(checks []probes.Check) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stopping {
		return
	}
	sorted := make([]probes.Check, 0, len(checks))
	seen := map[string]bool{}
	for _, c := range checks {
		if seen[c.Name] {
			continue
		}
		seen[c.Name] = true
		sorted = append(sorted, c.WithDefaults())
	}
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	units := map[string]*unit{}
	total := 0
	for _, c := range sorted {
		if a.probers[c.Type] == nil {
			a.pm.Count(c.Type, "unknown_type", 1)
			continue
		}
		off := Offset(a.cfg.Name, c.Name, c.Interval)
		key := "c/" + c.Name
		if a.engine != nil && c.Type == probes.TypeICMP {
			key = fmt.Sprintf("g/icmp/%d/%d/%d/%d/%d", c.Interval, c.Count, c.Spacing, c.Timeout, off)
		}
		u := units[key]
		if u == nil {
			u = &unit{offset: off}
			units[key] = u
		}
		u.checks = append(u.checks, c)
		total++
	}
	defs := make(map[string]string, len(units))
	for key, u := range units {
		d, _ := json.Marshal(u.checks)
		defs[key] = string(d)
	}
	for key, rc := range a.running {
		if def, ok := defs[key]; !ok || def != rc.def {
			rc.cancel()
			delete(a.running, key)
		}
	}
	for key, u := range units {
		if _, ok := a.running[key]; ok {
			continue
		}
		ctx, cancel := context.WithCancel(a.ctx)
		a.running[key] = &runningCheck{def: defs[key], cancel: cancel}
		a.checkWG.Add(1)
		go a.runUnit(ctx, u)
	}
	a.m.checks.Set(float64(total))
}

// Offset spreads a check's rounds over its interval: a hash of the agent
// and check names, on a 10 ms grid (many checks share a wakeup, which keeps
// the scheduler cheap at thousands of checks).
func Offset(agent, check string, interval time.Duration) time.Duration {
	h := fnv.New64a()
	h.Write([]byte(agent))
	h.Write([]byte{0})
	h.Write([]byte(check))
	slots := int64(interval / (10 * time.Millisecond))
	if slots < 1 {
		return 0
	}
	return time.Duration(int64(h.Sum64()%uint64(slots))) * 10 * time.Millisecond
}

func (a *Agent) runUnit(ctx context.Context, u *unit) {
	defer a.checkWG.Done()
	interval := u.checks[0].Interval
	next := time.Now().Truncate(interval).Add(u.offset)
	for next.Before(time.Now()) {
		next = next.Add(interval)
	}
	for {
		t := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, interval)
		var results []probes.Result
		if a.engine != nil && u.checks[0].Type == probes.TypeICMP {
			results = safeProbeMany(rctx, a.engine, u.checks)
		} else {
			results = []probes.Result{safeProbe(rctx, a.probers[u.checks[0].Type], u.checks[0])}
		}
		cancel()
		if ctx.Err() != nil {
			// Interrupted by a stop or an assignment change: not a
			// measurement (the unsent packets would read as loss).
			return
		}
		for i, res := range results {
			c := u.checks[i]
			res.Check, res.Type = c.Name, c.Type
			a.m.results.WithLabelValues(c.Type).Inc()
			a.results <- res // never closed while checks run (Stop waits for them)
		}
		next = next.Add(interval)
		for next.Before(time.Now()) { // a round overran: skip, never burst
			next = next.Add(interval)
		}
	}
}

// safeProbeMany is safeProbe for a group of ICMP checks.
func safeProbeMany(ctx context.Context, e *icmpengine.Engine, cs []probes.Check) (res []probes.Result) {
	defer func() {
		if r := recover(); r != nil {
			res = make([]probes.Result, len(cs))
			for i, c := range cs {
				res[i] = probes.Result{Check: c.Name, Type: c.Type, Target: c.Target, Time: time.Now(), Sent: c.Count,
					LossRatio: 1, MOS: 1, Error: "internal", RTTsUs: []uint32{}}
			}
		}
	}()
	return e.ProbeMany(ctx, append([]probes.Check(nil), cs...))
}

// safeProbe turns a prober panic into a counted failed round: one bad
// target never takes the agent down.
func safeProbe(ctx context.Context, p probes.Prober, c probes.Check) (res probes.Result) {
	defer func() {
		if r := recover(); r != nil {
			res = probes.Result{Check: c.Name, Type: c.Type, Target: c.Target, Time: time.Now(), Sent: c.Count,
				LossRatio: 1, MOS: 1, Error: "internal", RTTsUs: []uint32{}}
		}
	}()
	return p.Probe(ctx, c)
}

// collectLoop batches results into the spool.
func (a *Agent) collectLoop() {
	defer close(a.collected)
	var buf []probes.Result
	tick := time.NewTicker(a.cfg.FlushInterval)
	defer tick.Stop()
	flush := func() {
		if len(buf) == 0 {
			return
		}
		dropped, err := a.spool.append(buf)
		if err != nil {
			a.log.Error("spool append failed; results lost", "results", len(buf), "err", err)
			a.m.spoolDrop.Add(float64(len(buf)))
		}
		if dropped > 0 {
			a.log.Warn("spool full: dropped the oldest results", "results", dropped)
			a.m.spoolDrop.Add(float64(dropped))
		}
		buf = nil
		select {
		case a.kick <- struct{}{}:
		default:
		}
	}
	for {
		select {
		case r, ok := <-a.results:
			if !ok {
				flush()
				return
			}
			buf = append(buf, r)
			if len(buf) >= a.cfg.MaxBatchResults {
				flush()
			}
		case <-tick.C:
			flush()
		}
	}
}

// sendLoop delivers the spool in order, oldest first.
func (a *Agent) sendLoop() {
	defer a.wg.Done()
	backoff := a.cfg.RetryMin
	for {
		it, id, body, ok, err := a.spool.oldest()
		if err != nil {
			a.log.Error("spool", "err", err)
			a.m.spoolDrop.Add(float64(it.results))
			continue
		}
		if !ok {
			select {
			case <-a.ctx.Done():
				return
			case <-a.kick:
			case <-time.After(a.cfg.FlushInterval):
			}
			continue
		}
		retry := a.deliver(it, id, body)
		if !retry {
			backoff = a.cfg.RetryMin
			continue
		}
		select {
		case <-a.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, a.cfg.RetryMax)
	}
}

// deliver posts one batch; it returns true when it must be retried later.
func (a *Agent) deliver(it spoolItem, id string, body []byte) bool {
	st, data, err := a.request(a.ctx, http.MethodPost, api.PathResults, body, map[string]string{
		"Content-Type": "application/json", "Content-Encoding": "gzip", api.HeaderBatchID: id})
	switch {
	case err != nil:
		a.m.sendErrors.WithLabelValues("unreachable").Inc()
		return true
	case st == http.StatusOK:
		var ack api.ResultsAck
		_ = json.Unmarshal(data, &ack)
		if ack.Duplicate {
			a.m.batches.WithLabelValues("duplicate").Inc()
		} else {
			a.m.batches.WithLabelValues("delivered").Inc()
		}
		if ack.Dropped > 0 {
			a.log.Warn("server dropped results of a batch", "batch", id, "dropped", ack.Dropped, "reasons", ack.Reasons)
		}
		a.spool.remove(it.seq)
		return false
	case st == http.StatusConflict && errCode(data) == api.CodeNotRegistered:
		a.m.sendErrors.WithLabelValues("not_registered").Inc()
		if _, err := a.register(a.ctx); err == nil {
			return false // retry at once
		}
		return true
	case st == http.StatusBadRequest || st == http.StatusRequestEntityTooLarge:
		// The server will never take this batch: count it and move on.
		a.m.batches.WithLabelValues("rejected").Inc()
		a.m.spoolDrop.Add(float64(it.results))
		a.log.Error("server rejected a batch; dropped", "batch", id, "status", st, "code", errCode(data))
		a.spool.remove(it.seq)
		return false
	default:
		a.m.sendErrors.WithLabelValues(statusReason(st)).Inc()
		if st == http.StatusUnauthorized || st == http.StatusForbidden {
			a.log.Error("server refused the agent token; keeping results in the spool", "status", st)
		}
		return true
	}
}
