package server

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/meridian-obs/meridian/internal/config"
	"github.com/meridian-obs/meridian/pipeline/record"
	"github.com/meridian-obs/meridian/probes"
	"github.com/meridian-obs/meridian/probes/api"
)

type memSink struct {
	mu   sync.Mutex
	rows []record.ProbeResult
	fail bool
}

func (m *memSink) Write(_ context.Context, rows []record.ProbeResult) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail {
		return context.DeadlineExceeded
	}
	m.rows = append(m.rows, rows...)
	return nil
}

func (m *memSink) n() int { m.mu.Lock(); defer m.mu.Unlock(); return len(m.rows) }

type fixture struct {
	s    *Server
	sink *memSink
	reg  *prometheus.Registry
	h    http.Handler
	now  time.Time
}

func testCfg(stateFile string) Config {
	c := DefaultConfig()
	c.StateFile = stateFile
	c.Agents = []AgentConfig{
		{Name: "par1", TokenHash: HashToken("tok-par1")},
		{Name: "nyc1", Token: config.Secret{Value: "tok-nyc1"}, Region: "us-east"},
	}
	c.Checks = []CheckConfig{
		{Name: "eu-only", Type: "udp", Target: "127.0.0.1:7", Regions: []string{"eu-west"}, TargetRegion: "us-east", TargetSite: "nyc"},
		{Name: "all", Type: "icmp", Target: "127.0.0.1", TargetRegion: "eu-west"},
		{Name: "edge-label", Type: "tcp", Target: "127.0.0.1:80", AgentLabels: map[string]string{"tier": "edge"}},
	}
	return c
}

func newFixture(t *testing.T, stateFile string) *fixture {
	t.Helper()
	f := &fixture{sink: &memSink{}, reg: prometheus.NewRegistry(), now: time.Now()}
	if stateFile == "" {
		stateFile = filepath.Join(t.TempDir(), "agents.json")
	}
	cfg := testCfg(stateFile)
	r := config.NewReporter()
	cfg.Validate(r)
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, Deps{Sink: f.sink, Registry: f.reg, Now: func() time.Time { return f.now }})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.s, f.h = s, s.AgentHandler()
	return f
}

func (f *fixture) do(t *testing.T, method, path, token string, body any, hdr map[string]string) (*httptest.ResponseRecorder, []byte) {
	t.Helper()
	var b []byte
	switch v := body.(type) {
	case nil:
	case []byte:
		b = v
	default:
		b, _ = json.Marshal(v)
	}
	req := httptest.NewRequest(method, path, bytes.NewReader(b))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, req)
	return w, w.Body.Bytes()
}

func gz(t *testing.T, v any) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	json.NewEncoder(zw).Encode(v)
	zw.Close()
	return buf.Bytes()
}

func result(check, typ string) probes.Result {
	return probes.Result{Check: check, Type: typ, Target: "spoofed", Time: time.Now(), Sent: 2, Received: 1, LossRatio: 0.5,
		RTTMinMs: 1, RTTAvgMs: 1, RTTMaxMs: 1, RTTP50Ms: 1, RTTP95Ms: 1, RTTP99Ms: 1, MOS: 4, RTTsUs: []uint32{1000}}
}

func TestAuthRegisterAssignments(t *testing.T) {
	f := newFixture(t, "")
	if w, _ := f.do(t, "POST", api.PathRegister, "wrong", api.Register{Name: "par1"}, nil); w.Code != 401 {
		t.Errorf("bad token: %d", w.Code)
	}
	if w, _ := f.do(t, "GET", api.PathAssignments, "", nil, nil); w.Code != 401 {
		t.Errorf("no token: %d", w.Code)
	}
	if got := testutil.ToFloat64(f.s.m.batches.WithLabelValues("unauthorized")); got != 2 {
		t.Errorf("unauthorized = %v", got)
	}
	if w, _ := f.do(t, "POST", api.PathRegister, "tok-par1", api.Register{Name: "nyc1"}, nil); w.Code != 403 {
		t.Errorf("token of another agent: %d", w.Code)
	}
	if w, _ := f.do(t, "GET", api.PathAssignments, "tok-par1", nil, nil); w.Code != 409 {
		t.Errorf("unregistered assignments: %d", w.Code)
	}
	w, body := f.do(t, "POST", api.PathRegister, "tok-par1", api.Register{Name: "par1", Region: "eu-west", Site: "par", Labels: map[string]string{"tier": "edge"}}, nil)
	if w.Code != 200 {
		t.Fatalf("register: %d %s", w.Code, body)
	}
	var as api.Assignments
	json.Unmarshal(body, &as)
	if names := checkNames(as); names != "eu-only,all,edge-label" {
		t.Errorf("par1 checks %s", names)
	}
	// nyc1 registers as eu-west, but the server pins it to us-east.
	w, body = f.do(t, "POST", api.PathRegister, "tok-nyc1", api.Register{Name: "nyc1", Region: "eu-west"}, nil)
	json.Unmarshal(body, &as)
	if w.Code != 200 || checkNames(as) != "all" {
		t.Errorf("nyc1: %d %s", w.Code, body)
	}
	if st := f.s.Agents(); st[0].Name != "nyc1" || st[0].Region != "us-east" || !st[0].Registered || !st[0].Stale {
		t.Errorf("agents %+v", st)
	}
}

func checkNames(as api.Assignments) string {
	s := ""
	for i, c := range as.Checks {
		if i > 0 {
			s += ","
		}
		s += c.Name
	}
	return s
}

func TestResultsDedupBadInputStale(t *testing.T) {
	state := filepath.Join(t.TempDir(), "agents.json")
	f := newFixture(t, state)
	f.do(t, "POST", api.PathRegister, "tok-par1", api.Register{Name: "par1", Region: "eu-west", Site: "par"}, nil)
	bad := result("eu-only", "udp")
	bad.Received = 5 // more than sent
	batch := api.Results{BatchID: "i1:1", Results: []probes.Result{result("eu-only", "udp"), result("nope", "udp"), result("all", "tcp"), bad, result("all", "icmp")}}
	hdr := map[string]string{"Content-Encoding": "gzip", api.HeaderBatchID: "i1:1"}
	w, body := f.do(t, "POST", api.PathResults, "tok-par1", gz(t, batch), hdr)
	var ack api.ResultsAck
	json.Unmarshal(body, &ack)
	if w.Code != 200 || ack.Accepted != 2 || ack.Dropped != 3 || ack.Reasons["unknown_check"] != 1 || ack.Reasons["type_mismatch"] != 1 || ack.Reasons["malformed"] != 1 {
		t.Fatalf("ack %d %s", w.Code, body)
	}
	rows := f.sink.rows
	if len(rows) != 2 || rows[0].Agent != "par1" || rows[0].SrcRegion != "eu-west" || rows[0].SrcSite != "par" ||
		rows[0].TargetRegion != "us-east" || rows[0].TargetSite != "nyc" || rows[0].Target != "127.0.0.1:7" || rows[1].TargetRegion != "eu-west" {
		t.Errorf("rows %+v", rows)
	}
	// The same batch again (a lost acknowledgement): acknowledged, not stored.
	w, body = f.do(t, "POST", api.PathResults, "tok-par1", gz(t, batch), hdr)
	json.Unmarshal(body, &ack)
	if w.Code != 200 || !ack.Duplicate || f.sink.n() != 2 {
		t.Errorf("duplicate: %d %s rows %d", w.Code, body, f.sink.n())
	}
	// Bad bodies are refused with 400, counted.
	if w, _ := f.do(t, "POST", api.PathResults, "tok-par1", []byte("not gzip"), map[string]string{"Content-Encoding": "gzip", api.HeaderBatchID: "i1:2"}); w.Code != 400 {
		t.Errorf("bad gzip: %d", w.Code)
	}
	if w, _ := f.do(t, "POST", api.PathResults, "tok-par1", []byte("{"), map[string]string{api.HeaderBatchID: "i1:2"}); w.Code != 400 {
		t.Errorf("bad json: %d", w.Code)
	}
	if w, _ := f.do(t, "POST", api.PathResults, "tok-par1", []byte("{}"), map[string]string{api.HeaderBatchID: "nocolon"}); w.Code != 400 {
		t.Errorf("bad batch id: %d", w.Code)
	}
	if got := testutil.ToFloat64(f.s.m.batches.WithLabelValues("rejected")); got != 3 {
		t.Errorf("rejected = %v", got)
	}
	// A pipeline that cannot take rows: 503, the batch is not marked delivered.
	f.sink.fail = true
	b2 := api.Results{BatchID: "i1:2", Results: []probes.Result{result("all", "icmp")}}
	if w, _ := f.do(t, "POST", api.PathResults, "tok-par1", gz(t, b2), map[string]string{"Content-Encoding": "gzip", api.HeaderBatchID: "i1:2"}); w.Code != 503 {
		t.Errorf("sink failure: %d", w.Code)
	}
	f.sink.fail = false
	if w, _ := f.do(t, "POST", api.PathResults, "tok-par1", gz(t, b2), map[string]string{"Content-Encoding": "gzip", api.HeaderBatchID: "i1:2"}); w.Code != 200 || f.sink.n() != 3 {
		t.Errorf("retry after sink failure: %d rows %d", w.Code, f.sink.n())
	}
	// Stale: par1 just delivered; nyc1 never did.
	if got := testutil.ToFloat64(staleGauge(t, f.reg)); got != 1 {
		t.Errorf("stale gauge = %v, want 1", got)
	}
	f.now = f.now.Add(4 * time.Minute)
	if got := testutil.ToFloat64(staleGauge(t, f.reg)); got != 2 {
		t.Errorf("stale gauge after 4 min = %v, want 2", got)
	}
	// Per agent: par1 (just turned stale by the clock) and nyc1 (never seen).
	mfs, _ := f.reg.Gather()
	perAgent := map[string]float64{}
	lastSeen := 0
	for _, mf := range mfs {
		switch mf.GetName() {
		case "meridian_probes_agent_stale":
			for _, m := range mf.GetMetric() {
				perAgent[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
			}
		case "meridian_probes_agent_last_seen_timestamp_seconds":
			lastSeen = len(mf.GetMetric())
		}
	}
	if perAgent["par1"] != 1 || perAgent["nyc1"] != 1 || len(perAgent) != 2 || lastSeen != 1 {
		t.Errorf("per-agent stale %v, last_seen series %d", perAgent, lastSeen)
	}
	// A restarted server still knows the last batch of par1.
	f.s.Stop(context.Background())
	f2 := newFixture(t, state)
	w, body = f2.do(t, "POST", api.PathResults, "tok-par1", gz(t, b2), map[string]string{"Content-Encoding": "gzip", api.HeaderBatchID: "i1:2"})
	json.Unmarshal(body, &ack)
	if w.Code != 200 || !ack.Duplicate || f2.sink.n() != 0 {
		t.Errorf("duplicate after restart: %d %s", w.Code, body)
	}
	// GET /api/v1/agents
	rec := httptest.NewRecorder()
	f2.s.AgentsHandler().ServeHTTP(rec, httptest.NewRequest("GET", api.PathAgents, nil))
	var out struct{ Agents []AgentStatus }
	json.Unmarshal(rec.Body.Bytes(), &out)
	if len(out.Agents) != 2 || out.Agents[1].Name != "par1" || out.Agents[1].Results != 3 || out.Agents[1].LastBatch != "i1:2" {
		t.Errorf("agents API: %s", rec.Body.Bytes())
	}
}

func staleGauge(t *testing.T, reg *prometheus.Registry) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "meridian_probes_agents_stale" {
			v := mf.GetMetric()[0].GetGauge().GetValue()
			return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "x"}, func() float64 { return v })
		}
	}
	t.Fatal("no meridian_probes_agents_stale")
	return nil
}

func TestConfigValidation(t *testing.T) {
	c := DefaultConfig()
	c.Agents = []AgentConfig{{Name: "a"}, {Name: "a", TokenHash: "zz"}}
	c.Checks = []CheckConfig{
		{Name: "x", Type: "smtp", Target: "t"},
		{Name: "x", Type: "http", Target: "ftp://h"},
		{Name: "d", Type: "dns", Target: "example.org", Agents: []string{"ghost"}},
		{Name: "u", Type: "udp", Target: "host-without-port", Count: 100, Spacing: time.Second, Interval: 10 * time.Second},
	}
	r := config.NewReporter()
	c.Validate(r)
	err := r.Err()
	if err == nil {
		t.Fatal("no errors")
	}
	for _, want := range []string{"agents[0].token_hash", "agents[1].name", "agents[1].token_hash", "checks[0].type", "checks[1].name",
		"checks[1].target", "checks[2].params.server", "checks[2].agents", "checks[3].target", "checks[3].interval"} {
		if !bytes.Contains([]byte(err.Error()), []byte(want)) {
			t.Errorf("missing error for %s in:\n%v", want, err)
		}
	}
}
