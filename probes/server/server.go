// Package server is the server side of the probe agents: it authenticates
// agents by their bearer token (stored hashed), keeps their registrations,
// serves their assignments from the checks of the configuration, accepts
// compressed result batches exactly once (deduplicated by batch id) and
// writes them through the pipeline into probe_results with the source
// agent, region and site and the target region. Agents that stop reporting
// are marked stale.
package server

import (
	"compress/gzip"
	"context"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meridian-obs/meridian/internal/httpx"
	"github.com/meridian-obs/meridian/pipeline/record"
	"github.com/meridian-obs/meridian/probes"
	"github.com/meridian-obs/meridian/probes/api"
)

// Deps of the server component.
type Deps struct {
	Log      *slog.Logger
	Registry prometheus.Registerer
	Sink     record.Sink[record.ProbeResult]
	StateDir string
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
}

// AgentStatus is what the API and the dashboard show of an agent.
type AgentStatus struct {
	Name       string            `json:"name"`
	Region     string            `json:"region"`
	Site       string            `json:"site"`
	Labels     map[string]string `json:"labels,omitempty"`
	Version    string            `json:"version,omitempty"`
	Registered bool              `json:"registered"`
	LastSeen   time.Time         `json:"last_seen"`
	Stale      bool              `json:"stale"`
	Checks     int               `json:"checks"`
	Results    uint64            `json:"results"`
	LastBatch  string            `json:"last_batch,omitempty"`
}

type agentState struct {
	Name       string            `json:"name"`
	Region     string            `json:"region"`
	Site       string            `json:"site"`
	Labels     map[string]string `json:"labels,omitempty"`
	Version    string            `json:"version,omitempty"`
	Registered bool              `json:"registered"`
	LastSeen   time.Time         `json:"last_seen"`
	Instance   string            `json:"instance"`
	Seq        uint64            `json:"seq"`
	Results    uint64            `json:"results"`
}

// Server is the component.
type Server struct {
	cfg   Config
	log   *slog.Logger
	sink  record.Sink[record.ProbeResult]
	now   func() time.Time
	state string

	tokens    map[[32]byte]string // sha256(token) → agent name
	cfgAgents map[string]AgentConfig

	mu     sync.Mutex
	agents map[string]*agentState
	locks  map[string]*sync.Mutex

	m metrics
}

type metrics struct {
	batches *prometheus.CounterVec
	results prometheus.Counter
	dropped *prometheus.CounterVec
}

// New builds the component; no I/O.
func New(cfg Config, deps Deps) (*Server, error) {
	if deps.Sink == nil {
		return nil, errors.New("probes server: no sink")
	}
	log := deps.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: log.With("component", "probes"), sink: deps.Sink, now: deps.Now,
		agents: map[string]*agentState{}, locks: map[string]*sync.Mutex{}, tokens: map[[32]byte]string{},
		cfgAgents: map[string]AgentConfig{}}
	if s.now == nil {
		s.now = time.Now
	}
	s.state = cfg.StateFile
	if s.state != "" && !filepath.IsAbs(s.state) {
		s.state = filepath.Join(deps.StateDir, s.state)
	}
	s.m = metrics{
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meridian_probes_batches_total",
			Help: "Result batches received from agents by outcome (accepted, duplicate, rejected, unauthorized, unavailable)."}, []string{"outcome"}),
		results: prometheus.NewCounter(prometheus.CounterOpts{Name: "meridian_probes_results_total",
			Help: "Probe results accepted from agents and written to the pipeline."}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meridian_probes_results_dropped_total",
			Help: "Probe results refused by reason (unknown_check, type_mismatch, malformed, time)."}, []string{"reason"}),
	}
	if deps.Registry != nil {
		for _, c := range []prometheus.Collector{s.m.batches, s.m.results, s.m.dropped,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "meridian_probes_agents_stale",
				Help: "Agents declared in the configuration that delivered nothing within stale_after."},
				func() float64 { return float64(s.countStale()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "meridian_probes_agents_registered",
				Help: "Agents that registered."},
				func() float64 { return float64(s.countRegistered()) }),
			agentCollector{s},
		} {
			if err := deps.Registry.Register(c); err != nil {
				return nil, fmt.Errorf("probes server metrics: %w", err)
			}
		}
	}
	for _, a := range cfg.Agents {
		s.cfgAgents[a.Name] = a
		s.agents[a.Name] = &agentState{Name: a.Name, Region: a.Region, Site: a.Site}
		s.locks[a.Name] = &sync.Mutex{}
	}
	return s, nil
}

// Start resolves token secrets and loads the persisted agent state.
func (s *Server) Start(ctx context.Context) error {
	for _, a := range s.cfg.Agents {
		var h []byte
		if a.TokenHash != "" {
			h, _ = hex.DecodeString(a.TokenHash)
		} else {
			tok, err := a.Token.Resolve()
			if err != nil {
				return fmt.Errorf("probes: agent %s: %w", a.Name, err)
			}
			h, _ = hex.DecodeString(HashToken(tok))
		}
		var k [32]byte
		copy(k[:], h)
		s.tokens[k] = a.Name
	}
	if s.state != "" {
		data, err := os.ReadFile(s.state)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return fmt.Errorf("probes: read state: %w", err)
		default:
			var saved map[string]*agentState
			if err := json.Unmarshal(data, &saved); err != nil {
				s.log.Warn("agent state unreadable; starting empty (a batch in flight may be stored twice)", "file", s.state, "err", err)
			}
			s.mu.Lock()
			for name, st := range saved {
				if cur, ok := s.agents[name]; ok && st != nil {
					st.Name = name
					if ac := s.cfgAgents[name]; ac.Region != "" {
						st.Region = ac.Region
					}
					if ac := s.cfgAgents[name]; ac.Site != "" {
						st.Site = ac.Site
					}
					*cur = *st
				}
			}
			s.mu.Unlock()
		}
	}
	return nil
}

// Stop persists the agent state.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.saveLocked()
}

func (s *Server) saveLocked() error {
	if s.state == "" {
		return nil
	}
	data, err := json.Marshal(s.agents)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(s.state), 0o700); err != nil {
		return fmt.Errorf("probes: state dir: %w", err)
	}
	tmp := s.state + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("probes: write state: %w", err)
	}
	return os.Rename(tmp, s.state)
}

// Agents returns every declared agent with its staleness, sorted by name.
func (s *Server) Agents() []AgentStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	out := make([]AgentStatus, 0, len(s.agents))
	for _, a := range s.agents {
		out = append(out, AgentStatus{Name: a.Name, Region: a.Region, Site: a.Site, Labels: a.Labels, Version: a.Version,
			Registered: a.Registered, LastSeen: a.LastSeen, Stale: s.staleLocked(a, now), Checks: len(s.assignLocked(a)),
			Results: a.Results, LastBatch: batchID(a)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func batchID(a *agentState) string {
	if a.Instance == "" {
		return ""
	}
	return a.Instance + ":" + strconv.FormatUint(a.Seq, 10)
}

// staleLocked: no delivery within stale_after (counted from the last
// delivery, or never delivered).
func (s *Server) staleLocked(a *agentState, now time.Time) bool {
	return a.LastSeen.IsZero() || now.Sub(a.LastSeen) > s.cfg.StaleAfter
}

func (s *Server) countStale() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, now := 0, s.now()
	for _, a := range s.agents {
		if s.staleLocked(a, now) {
			n++
		}
	}
	return n
}

func (s *Server) countRegistered() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, a := range s.agents {
		if a.Registered {
			n++
		}
	}
	return n
}

func (s *Server) assignLocked(a *agentState) []probes.Check {
	out := []probes.Check{}
	if !a.Registered {
		return out
	}
	for _, c := range s.cfg.Checks {
		if c.runs(*a) {
			out = append(out, c.Check())
		}
	}
	return out
}

// AgentHandler serves register, assignments and results; mount it under
// /api/v1/agent/ with access Self (it authenticates agents itself).
func (s *Server) AgentHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+api.PathRegister, s.handleRegister)
	mux.HandleFunc("GET "+api.PathAssignments, s.handleAssignments)
	mux.HandleFunc("POST "+api.PathResults, s.handleResults)
	return mux
}

// AgentsHandler serves GET /api/v1/agents (mount with viewer access).
func (s *Server) AgentsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpx.JSON(w, http.StatusOK, map[string]any{"agents": s.Agents()})
	})
}

// authenticate returns the agent of the bearer token, or writes 401.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (string, bool) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if ok && tok != "" {
		want, _ := hex.DecodeString(HashToken(strings.TrimSpace(tok)))
		name := ""
		for h, n := range s.tokens {
			if subtle.ConstantTimeCompare(h[:], want) == 1 {
				name = n
			}
		}
		if name != "" {
			return name, true
		}
	}
	s.m.batches.WithLabelValues("unauthorized").Inc()
	w.Header().Set("WWW-Authenticate", `Bearer realm="meridian-agent"`)
	httpx.Error(w, http.StatusUnauthorized, "unauthorized", "missing or unknown agent token")
	return "", false
}

func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request) {
	name, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	var reg api.Register
	if !httpx.DecodeJSON(w, r, 1<<16, &reg) {
		return
	}
	if reg.Name != name {
		httpx.Error(w, http.StatusForbidden, "forbidden", "this token belongs to another agent than %q", reg.Name)
		return
	}
	s.mu.Lock()
	a := s.agents[name]
	ac := s.cfgAgents[name]
	a.Region, a.Site = reg.Region, reg.Site
	if ac.Region != "" {
		a.Region = ac.Region
	}
	if ac.Site != "" {
		a.Site = ac.Site
	}
	a.Labels, a.Version, a.Registered = reg.Labels, reg.Version, true
	resp := api.Assignments{Agent: name, Checks: s.assignLocked(a), RefreshNs: int64(s.cfg.RefreshInterval)}
	region, site := a.Region, a.Site
	err := s.saveLocked()
	s.mu.Unlock()
	if err != nil {
		s.log.Error("save agent state", "err", err)
	}
	s.log.Info("agent registered", "agent", name, "region", region, "site", site, "checks", len(resp.Checks))
	httpx.JSON(w, http.StatusOK, resp)
}

func (s *Server) handleAssignments(w http.ResponseWriter, r *http.Request) {
	name, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	a := s.agents[name]
	registered := a.Registered
	resp := api.Assignments{Agent: name, Checks: s.assignLocked(a), RefreshNs: int64(s.cfg.RefreshInterval)}
	s.mu.Unlock()
	if !registered {
		httpx.Error(w, http.StatusConflict, api.CodeNotRegistered, "register first")
		return
	}
	httpx.JSON(w, http.StatusOK, resp)
}

func (s *Server) handleResults(w http.ResponseWriter, r *http.Request) {
	name, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	// One batch of an agent at a time: deduplication needs the order.
	lock := s.locks[name]
	lock.Lock()
	defer lock.Unlock()

	s.mu.Lock()
	a := s.agents[name]
	registered := a.Registered
	s.mu.Unlock()
	if !registered {
		httpx.Error(w, http.StatusConflict, api.CodeNotRegistered, "register first")
		return
	}
	instance, seq, err := parseBatchID(r.Header.Get(api.HeaderBatchID))
	if err != nil {
		s.m.batches.WithLabelValues("rejected").Inc()
		httpx.BadRequest(w, "%s: %v", api.HeaderBatchID, err)
		return
	}
	s.mu.Lock()
	dup := a.Instance == instance && seq <= a.Seq
	s.mu.Unlock()
	if dup {
		s.m.batches.WithLabelValues("duplicate").Inc()
		httpx.JSON(w, http.StatusOK, api.ResultsAck{Duplicate: true})
		return
	}
	var body io.Reader = http.MaxBytesReader(w, r.Body, s.cfg.MaxBatchBytes)
	if strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
		zr, err := gzip.NewReader(body)
		if err != nil {
			s.m.batches.WithLabelValues("rejected").Inc()
			httpx.BadRequest(w, "invalid gzip body: %v", err)
			return
		}
		defer zr.Close()
		body = io.LimitReader(zr, s.cfg.MaxBatchBytes+1)
	}
	data, err := io.ReadAll(body)
	if err != nil || int64(len(data)) > s.cfg.MaxBatchBytes {
		s.m.batches.WithLabelValues("rejected").Inc()
		httpx.Error(w, http.StatusRequestEntityTooLarge, "too_large", "batch larger than %d bytes or unreadable", s.cfg.MaxBatchBytes)
		return
	}
	var batch api.Results
	if err := json.Unmarshal(data, &batch); err != nil {
		s.m.batches.WithLabelValues("rejected").Inc()
		httpx.BadRequest(w, "invalid JSON batch: %v", err)
		return
	}
	s.mu.Lock()
	checks := map[string]CheckConfig{}
	for _, c := range s.cfg.Checks {
		if c.runs(*a) {
			checks[c.Name] = c
		}
	}
	src := probes.Source{Agent: name, Region: a.Region, Site: a.Site}
	s.mu.Unlock()
	now := s.now()
	ack := api.ResultsAck{Reasons: map[string]int{}}
	rows := make([]record.ProbeResult, 0, len(batch.Results))
	for _, res := range batch.Results {
		c, ok := checks[res.Check]
		reason := ""
		switch {
		case !ok:
			reason = "unknown_check"
		case res.Type != c.Type:
			reason = "type_mismatch"
		case !sane(res):
			reason = "malformed"
		case res.Time.Before(now.Add(-7*24*time.Hour)) || res.Time.After(now.Add(time.Hour)):
			reason = "time"
		}
		if reason != "" {
			ack.Dropped++
			ack.Reasons[reason]++
			s.m.dropped.WithLabelValues(reason).Inc()
			continue
		}
		src.TargetRegion, src.TargetSite = c.TargetRegion, c.TargetSite
		res.Target = c.Target
		rows = append(rows, res.ToRecord(src))
	}
	if len(rows) > 0 {
		if err := s.sink.Write(r.Context(), rows); err != nil {
			s.m.batches.WithLabelValues("unavailable").Inc()
			s.log.Warn("pipeline refused a batch; the agent will retry", "agent", name, "err", err)
			httpx.Error(w, http.StatusServiceUnavailable, "unavailable", "cannot store results now; retry")
			return
		}
	}
	ack.Accepted = len(rows)
	s.m.results.Add(float64(len(rows)))
	s.m.batches.WithLabelValues("accepted").Inc()
	s.mu.Lock()
	a.Instance, a.Seq = instance, seq
	a.LastSeen = now
	a.Results += uint64(len(rows))
	err = s.saveLocked()
	s.mu.Unlock()
	if err != nil {
		s.log.Error("save agent state", "err", err)
	}
	if len(ack.Reasons) == 0 {
		ack.Reasons = nil
	}
	httpx.JSON(w, http.StatusOK, ack)
}

func parseBatchID(id string) (string, uint64, error) {
	inst, seqs, ok := strings.Cut(id, ":")
	if !ok || inst == "" || len(inst) > 64 {
		return "", 0, errors.New(`expected "<instance>:<seq>"`)
	}
	seq, err := strconv.ParseUint(seqs, 10, 64)
	if err != nil {
		return "", 0, errors.New("seq is not a number")
	}
	return inst, seq, nil
}

// sane rejects results no prober produces.
func sane(r probes.Result) bool {
	if r.Sent < 0 || r.Received < 0 || r.Received > r.Sent || r.Duplicates < 0 || r.Reordered < 0 || r.Sent > 1_000_000 {
		return false
	}
	if len(r.RTTsUs) != r.Received {
		return false
	}
	for _, v := range []float64{r.LossRatio, r.RTTMinMs, r.RTTAvgMs, r.RTTMaxMs, r.RTTP50Ms, r.RTTP95Ms, r.RTTP99Ms,
		r.RTTStddevMs, r.JitterMs, r.JitterRFC3550Ms, r.MOS} {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return false
		}
	}
	if r.LossRatio > 1 || len(r.Phases) > 64 || len(r.Error) > 200 {
		return false
	}
	for _, p := range r.Phases {
		if math.IsNaN(p.Value) || math.IsInf(p.Value, 0) || len(p.Name) > 64 {
			return false
		}
	}
	return true
}

// agentCollector exports, per declared agent, whether it is stale and when
// it last delivered (for alerting on one vantage point going quiet).
type agentCollector struct{ s *Server }

var (
	descAgentStale = prometheus.NewDesc("meridian_probes_agent_stale",
		"1 when the agent delivered nothing within stale_after (or never), else 0.", []string{"agent", "region", "site"}, nil)
	descAgentLastSeen = prometheus.NewDesc("meridian_probes_agent_last_seen_timestamp_seconds",
		"When the agent last delivered a batch (Unix time; absent before the first).", []string{"agent", "region", "site"}, nil)
)

func (c agentCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descAgentStale
	ch <- descAgentLastSeen
}

func (c agentCollector) Collect(ch chan<- prometheus.Metric) {
	for _, a := range c.s.Agents() {
		v := 0.0
		if a.Stale {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(descAgentStale, prometheus.GaugeValue, v, a.Name, a.Region, a.Site)
		if !a.LastSeen.IsZero() {
			ch <- prometheus.MustNewConstMetric(descAgentLastSeen, prometheus.GaugeValue, float64(a.LastSeen.UnixNano())/1e9, a.Name, a.Region, a.Site)
		}
	}
}
