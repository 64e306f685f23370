package agent

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meridian-obs/meridian/internal/config"
	"github.com/meridian-obs/meridian/pipeline/record"
	"github.com/meridian-obs/meridian/probes"
	"github.com/meridian-obs/meridian/probes/api"
	"github.com/meridian-obs/meridian/probes/server"
)

func TestSpoolBoundOrderAndRestart(t *testing.T) {
	dir := t.TempDir()
	s, err := openSpool(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	batch := func(n int) []probes.Result {
		out := make([]probes.Result, n)
		for i := range out {
			// Incompressible-ish payload: distinct RTT series.
			rtts := make([]uint32, 200)
			for j := range rtts {
				rtts[j] = uint32(i*7919 + j*104729)
			}
			out[i] = probes.Result{Check: "c", Type: "udp", Time: time.Unix(int64(i), 0), RTTsUs: rtts}
		}
		return out
	}
	dropped := 0
	for i := 0; i < 40; i++ {
		d, err := s.append(batch(100))
		if err != nil {
			t.Fatal(err)
		}
		dropped += d
	}
	n, size := s.stats()
	if size > 1<<20 {
		t.Errorf("spool holds %d bytes, bound 1 MiB", size)
	}
	if dropped == 0 || dropped%100 != 0 || dropped/100+n != 40 {
		t.Errorf("dropped %d results, %d batches left of 40", dropped, n)
	}
	first, id, _, ok, err := s.oldest()
	if !ok || err != nil || first.seq != uint64(dropped/100+1) {
		t.Fatalf("oldest %+v %q %v %v", first, id, ok, err)
	}
	inst := s.instance
	// Deliver two, then "restart": identity and sequence survive.
	s.remove(first.seq)
	second, _, _, _, _ := s.oldest()
	s.remove(second.seq)
	s2, err := openSpool(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if s2.instance != inst || s2.next != 41 {
		t.Errorf("after restart: instance %q (was %q), next %d, want 41", s2.instance, inst, s2.next)
	}
	if n2, _ := s2.stats(); n2 != n-2 {
		t.Errorf("after restart %d batches, want %d", n2, n-2)
	}
	// Empty spool: the sequence still continues.
	for {
		it, _, _, ok, _ := s2.oldest()
		if !ok {
			break
		}
		s2.remove(it.seq)
	}
	s3, _ := openSpool(dir, 1<<20)
	if s3.next != 41 {
		t.Errorf("empty spool restart: next %d, want 41", s3.next)
	}
}

type sinkCount struct {
	mu   sync.Mutex
	rows []record.ProbeResult
}

func (s *sinkCount) Write(_ context.Context, rows []record.ProbeResult) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rows = append(s.rows, rows...)
	return nil
}

func (s *sinkCount) byCheck() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := map[string]int{}
	for _, r := range s.rows {
		m[r.Check]++
	}
	return m
}

func counter(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, _ := reg.Gather()
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label != "" && (len(m.GetLabel()) == 0 || m.GetLabel()[len(m.GetLabel())-1].GetValue() != label) {
				continue
			}
			if m.GetCounter() != nil {
				sum += m.GetCounter().GetValue()
			} else {
				sum += m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type panicky struct{}

func (panicky) Probe(context.Context, probes.Check) probes.Result { panic("boom") }

// A server that refuses one batch (400), a prober that panics and a target
// that never answers: each is counted, nothing stalls the other checks.
func TestBadInputNeverStallsTheAgent(t *testing.T) {
	sink := &sinkCount{}
	blackhole, _ := net.ListenPacket("udp", "127.0.0.1:0") // reads nothing, answers nothing
	defer blackhole.Close()
	resp, _ := probes.ListenResponder("127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go resp.Serve(ctx)
	cfg := server.DefaultConfig()
	cfg.StateFile = filepath.Join(t.TempDir(), "s.json")
	cfg.RefreshInterval = time.Second
	cfg.Agents = []server.AgentConfig{{Name: "a1", TokenHash: server.HashToken("tok")}}
	cfg.Checks = []server.CheckConfig{
		{Name: "good", Type: "udp", Target: resp.Addr().String(), Count: 3, Spacing: time.Millisecond, Timeout: 200 * time.Millisecond, Interval: time.Second},
		{Name: "silent", Type: "udp", Target: blackhole.LocalAddr().String(), Count: 3, Spacing: time.Millisecond, Timeout: 900 * time.Millisecond, Interval: time.Second},
		{Name: "crash", Type: "dns", Target: "x", Params: map[string]string{"server": "127.0.0.1:1"}, Interval: time.Second},
	}
	srv, err := server.New(cfg, server.Deps{Sink: sink})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start(ctx)
	var refuse atomic.Int32
	refuse.Store(1)
	h := srv.AgentHandler()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == api.PathResults && refuse.Add(-1) >= 0 {
			http.Error(w, `{"error":{"code":"bad_request","message":"no"}}`, http.StatusBadRequest)
			return
		}
		h.ServeHTTP(w, r)
	}))
	defer ts.Close()

	acfg := DefaultConfig()
	acfg.Name, acfg.Region, acfg.Server = "a1", "eu", ts.URL
	acfg.Token = config.Secret{Value: "tok"}
	acfg.SpoolDir = t.TempDir()
	acfg.FlushInterval = 100 * time.Millisecond
	acfg.RetryMin, acfg.RetryMax = 20*time.Millisecond, 100*time.Millisecond
	acfg.MetricsListen = "127.0.0.1:0"
	a, err := New(acfg, Deps{Probers: map[string]probes.Prober{"dns": panicky{}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	reg := a.Registry()
	waitFor(t, 15*time.Second, "three rounds of every check stored", func() bool {
		m := sink.byCheck()
		return m["good"] >= 3 && m["silent"] >= 3 && m["crash"] >= 3
	})
	// The agent's own /metrics answers.
	res, err := http.Get("http://" + a.MetricsAddr() + "/metrics")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("agent /metrics: %v", err)
	}
	res.Body.Close()
	sctx, c2 := context.WithTimeout(ctx, 10*time.Second)
	defer c2()
	if err := a.Stop(sctx); err != nil {
		t.Fatal(err)
	}
	if got := counter(t, reg, "meridian_agent_batches_total", "rejected"); got != 1 {
		t.Errorf("rejected batches %v, want 1", got)
	}
	produced := counter(t, reg, "meridian_agent_results_total", "")
	lost := counter(t, reg, "meridian_agent_spool_dropped_results_total", "")
	stored := 0
	for _, n := range sink.byCheck() {
		stored += n
	}
	if lost == 0 || float64(stored)+lost != produced {
		t.Errorf("produced %v = stored %d + dropped with the refused batch %v?", produced, stored, lost)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	for _, r := range sink.rows {
		switch r.Check {
		case "good":
			if r.Received != 3 {
				t.Errorf("good round lost packets: %+v", r)
			}
		case "silent":
			if r.Received != 0 || r.Error != "timeout" || r.LossRatio != 1 {
				t.Errorf("silent round: %+v", r)
			}
		case "crash":
			if r.Error != "internal" || r.LossRatio != 1 {
				t.Errorf("panicking prober round: %+v", r)
			}
		}
	}
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test ca"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	ca, _ := x509.ParseCertificate(caDER)
	leaf := func(cn string, usage x509.ExtKeyUsage, serial int64) (tls.Certificate, []byte, []byte) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn}, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
		der, _ := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		kd, _ := x509.MarshalECPrivateKey(k)
		c, _ := tls.X509KeyPair(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}))
		return c, der, kd
	}
	serverCert, _, _ := leaf("server", x509.ExtKeyUsageServerAuth, 2)
	_, clientDER, clientKey := leaf("agent", x509.ExtKeyUsageClientAuth, 3)
	writePEM(t, filepath.Join(dir, "ca.pem"), "CERTIFICATE", caDER)
	writePEM(t, filepath.Join(dir, "client.pem"), "CERTIFICATE", clientDER)
	writePEM(t, filepath.Join(dir, "client.key"), "EC PRIVATE KEY", clientKey)
	pool := x509.NewCertPool()
	pool.AddCert(ca)

	cfg := server.DefaultConfig()
	cfg.StateFile = filepath.Join(dir, "s.json")
	cfg.Agents = []server.AgentConfig{{Name: "a1", TokenHash: server.HashToken("tok")}}
	srv, _ := server.New(cfg, server.Deps{Sink: &sinkCount{}})
	srv.Start(context.Background())
	ts := httptest.NewUnstartedServer(srv.AgentHandler())
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert}
	ts.StartTLS()
	defer ts.Close()

	run := func(withClientCert bool) *Agent {
		acfg := DefaultConfig()
		acfg.Name, acfg.Server = "a1", ts.URL
		acfg.Token = config.Secret{Value: "tok"}
		acfg.SpoolDir = t.TempDir()
		acfg.MetricsListen = ""
		acfg.RetryMin, acfg.RetryMax = 20*time.Millisecond, 50*time.Millisecond
		acfg.TLS.CACert = filepath.Join(dir, "ca.pem")
		if withClientCert {
			acfg.TLS.ClientCert = filepath.Join(dir, "client.pem")
			acfg.TLS.ClientKey = config.Secret{File: filepath.Join(dir, "client.key")}
		}
		r := config.NewReporter()
		acfg.Validate(r)
		if err := r.Err(); err != nil {
			t.Fatal(err)
		}
		a, err := New(acfg, Deps{})
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Stop(context.Background()) })
		return a
	}
	run(true)
	waitFor(t, 10*time.Second, "registration over mutual TLS", func() bool { return srv.Agents()[0].Registered })
	// Without the client certificate the handshake fails: counted, retried.
	a := run(false)
	waitFor(t, 10*time.Second, "failed handshakes counted", func() bool {
		return counter(t, a.Registry(), "meridian_agent_send_errors_total", "unreachable") >= 2
	})
}

func TestConfigValidation(t *testing.T) {
	c := DefaultConfig()
	c.Server = "ftp://x"
	c.ICMPEngine = "fast"
	c.TLS.ClientCert = "/x.pem"
	r := config.NewReporter()
	c.Validate(r)
	err := r.Err()
	for _, want := range []string{"name:", "server:", "token:", "tls.client_cert:", "icmp_engine:"} {
		if err == nil || !contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
	// A file on disk, with the secret as token_file.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "tok"), []byte("secret\n"), 0o600)
	path := filepath.Join(dir, "agent.yaml")
	os.WriteFile(path, []byte("name: a1\nregion: eu\nserver: https://127.0.0.1:8080\ntoken_file: "+filepath.Join(dir, "tok")+"\nspool_dir: "+dir+"\n"), 0o600)
	got, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if tok, _ := got.Token.Resolve(); tok != "secret" || got.Region != "eu" {
		t.Errorf("loaded %+v", got)
	}
	os.WriteFile(path, []byte("name: a1\nbogus: 1\n"), 0o600)
	if _, err := LoadConfig(path); err == nil || !contains(err.Error(), "bogus") {
		t.Errorf("unknown key accepted: %v", err)
	}
}

func contains(s, sub string) bool {
	return len(s) >= len(sub) && (s == sub || len(sub) == 0 || indexOf(s, sub) >= 0)
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

func TestOffsetSpread(t *testing.T) {
	seen := map[time.Duration]int{}
	for i := 0; i < 1000; i++ {
		o := Offset("agent", "check-"+string(rune('a'+i%26))+string(rune('a'+i/26)), time.Second)
		if o < 0 || o >= time.Second || o%(10*time.Millisecond) != 0 {
			t.Fatalf("offset %s", o)
		}
		seen[o]++
	}
	// 1000 checks over 100 slots: every slot used, none with more than 30.
	if len(seen) < 90 {
		t.Errorf("only %d of 100 slots used", len(seen))
	}
	for o, n := range seen {
		if n > 30 {
			t.Errorf("slot %s has %d checks", o, n)
		}
	}
	// On the 10 ms grid within the interval, and the agent's name matters
	// (agents running the same check do not all wake together).
	agents := map[time.Duration]bool{}
	for i := 0; i < 100; i++ {
		o := Offset(fmt.Sprintf("agent-%d", i), "c", time.Second)
		if o < 0 || o >= time.Second || o%(10*time.Millisecond) != 0 {
			t.Errorf("offset %s off the grid or out of the interval", o)
		}
		agents[o] = true
	}
	if len(agents) < 50 {
		t.Errorf("100 agents share only %d offsets", len(agents))
	}
}

// Assignments are refreshed: a check removed on the server stops, a new one
// starts, without restarting the agent.
func TestAssignmentsRefresh(t *testing.T) {
	resp, _ := probes.ListenResponder("127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go resp.Serve(ctx)
	sink := &sinkCount{}
	state := filepath.Join(t.TempDir(), "s.json")
	mk := func(check string) http.Handler {
		cfg := server.DefaultConfig()
		cfg.StateFile = state
		cfg.RefreshInterval = time.Second
		cfg.Agents = []server.AgentConfig{{Name: "a1", TokenHash: server.HashToken("tok")}}
		cfg.Checks = []server.CheckConfig{{Name: check, Type: "udp", Target: resp.Addr().String(), Count: 2,
			Spacing: time.Millisecond, Timeout: 200 * time.Millisecond, Interval: time.Second}}
		srv, err := server.New(cfg, server.Deps{Sink: sink})
		if err != nil {
			t.Fatal(err)
		}
		srv.Start(ctx)
		return srv.AgentHandler()
	}
	var cur atomic.Pointer[http.Handler]
	h1 := mk("old")
	cur.Store(&h1)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*cur.Load()).ServeHTTP(w, r) }))
	defer ts.Close()
	acfg := DefaultConfig()
	acfg.Name, acfg.Server = "a1", ts.URL
	acfg.Token = config.Secret{Value: "tok"}
	acfg.SpoolDir = t.TempDir()
	acfg.FlushInterval = 100 * time.Millisecond
	acfg.RetryMin, acfg.RetryMax = 20*time.Millisecond, 100*time.Millisecond
	acfg.MetricsListen = ""
	a, _ := New(acfg, Deps{})
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer a.Stop(context.Background())
	waitFor(t, 10*time.Second, "old check results", func() bool { return sink.byCheck()["old"] >= 1 })
	h2 := mk("new")
	cur.Store(&h2)
	waitFor(t, 10*time.Second, "new check results", func() bool { return sink.byCheck()["new"] >= 2 })
	// After the switch, the old check produces nothing more.
	oldN := sink.byCheck()["old"]
	time.Sleep(2500 * time.Millisecond)
	if n := sink.byCheck()["old"]; n != oldN {
		t.Errorf("old check still running: %d → %d results", oldN, n)
	}
	if g := counter(t, a.Registry(), "meridian_agent_checks", ""); g != 1 {
		t.Errorf("meridian_agent_checks = %v, want 1", g)
	}
}

// With the ICMP engine, checks of equal parameters and start slot run as
// one group (one ProbeMany per round); every check still gets its own
// results with its own target.
func TestICMPChecksGroupedOnEngine(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the ICMP engine needs raw sockets (root)")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sink := &sinkCount{}
	cfg := server.DefaultConfig()
	cfg.StateFile = filepath.Join(t.TempDir(), "s.json")
	cfg.Agents = []server.AgentConfig{{Name: "a1", TokenHash: server.HashToken("tok")}}
	const n = 300
	for i := 0; i < n; i++ {
		cfg.Checks = append(cfg.Checks, server.CheckConfig{Name: fmt.Sprintf("c%03d", i), Type: "icmp",
			Target: fmt.Sprintf("127.4.%d.%d", i/200, i%200+1), Count: 2, Spacing: 5 * time.Millisecond, Timeout: 500 * time.Millisecond, Interval: time.Second})
	}
	srv, _ := server.New(cfg, server.Deps{Sink: sink})
	srv.Start(ctx)
	ts := httptest.NewServer(srv.AgentHandler())
	defer ts.Close()
	acfg := DefaultConfig()
	acfg.Name, acfg.Server = "a1", ts.URL
	acfg.Token = config.Secret{Value: "tok"}
	acfg.SpoolDir = t.TempDir()
	acfg.FlushInterval = 200 * time.Millisecond
	acfg.MetricsListen = ""
	acfg.ICMPEngine = "engine"
	a, _ := New(acfg, Deps{})
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer a.Stop(context.Background())
	waitFor(t, 15*time.Second, "a result for every check", func() bool { return len(sink.byCheck()) == n })
	a.mu.Lock()
	units := len(a.running)
	a.mu.Unlock()
	if units >= n || units > 100 {
		t.Errorf("%d scheduling units for %d checks on 100 start slots: not grouped", units, n)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	for _, r := range sink.rows {
		var i int
		fmt.Sscanf(r.Check, "c%03d", &i)
		if want := fmt.Sprintf("127.4.%d.%d", i/200, i%200+1); r.TargetAddr.String() != want || r.Received != 2 {
			t.Fatalf("check %s: target %s received %d, want %s and 2", r.Check, r.TargetAddr, r.Received, want)
		}
	}
}

// A server that lost its state (new state file) answers 409 not_registered:
// the agent registers again and delivers; nothing is lost or refused.
func TestReRegisterAfterServerStateLoss(t *testing.T) {
	resp, _ := probes.ListenResponder("127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go resp.Serve(ctx)
	sink := &sinkCount{}
	mk := func() http.Handler {
		cfg := server.DefaultConfig()
		cfg.StateFile = filepath.Join(t.TempDir(), "s.json") // a fresh, empty state each time
		cfg.RefreshInterval = time.Hour                      // no refresh: only the 409 can trigger it
		cfg.Agents = []server.AgentConfig{{Name: "a1", TokenHash: server.HashToken("tok")}}
		cfg.Checks = []server.CheckConfig{{Name: "echo", Type: "udp", Target: resp.Addr().String(), Count: 2,
			Spacing: time.Millisecond, Timeout: 200 * time.Millisecond, Interval: time.Second}}
		srv, _ := server.New(cfg, server.Deps{Sink: sink})
		srv.Start(ctx)
		return srv.AgentHandler()
	}
	var cur atomic.Pointer[http.Handler]
	h1 := mk()
	cur.Store(&h1)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*cur.Load()).ServeHTTP(w, r) }))
	defer ts.Close()
	acfg := DefaultConfig()
	acfg.Name, acfg.Server = "a1", ts.URL
	acfg.Token = config.Secret{Value: "tok"}
	acfg.SpoolDir = t.TempDir()
	acfg.FlushInterval = 100 * time.Millisecond
	acfg.RetryMin, acfg.RetryMax = 20*time.Millisecond, 100*time.Millisecond
	acfg.MetricsListen = ""
	a, _ := New(acfg, Deps{})
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "first results", func() bool { return sink.byCheck()["echo"] >= 1 })
	h2 := mk()
	cur.Store(&h2)
	before := sink.byCheck()["echo"]
	waitFor(t, 10*time.Second, "results after the server lost its state", func() bool { return sink.byCheck()["echo"] >= before+2 })
	if err := a.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	reg := a.Registry()
	if got := counter(t, reg, "meridian_agent_send_errors_total", "not_registered"); got < 1 {
		t.Errorf("not_registered answers counted %v, want ≥ 1", got)
	}
	if produced, stored := counter(t, reg, "meridian_agent_results_total", ""), sink.byCheck()["echo"]; float64(stored) != produced {
		t.Errorf("produced %v, stored %d", produced, stored)
	}
	if got := counter(t, reg, "meridian_agent_batches_total", "rejected"); got != 0 {
		t.Errorf("rejected %v", got)
	}
}
