package e2e

import (
	"context"
	"fmt"
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
	"github.com/meridian-obs/meridian/internal/testutil/chtest"
	"github.com/meridian-obs/meridian/pipeline"
	"github.com/meridian-obs/meridian/pipeline/store"
	"github.com/meridian-obs/meridian/probes"
	"github.com/meridian-obs/meridian/probes/agent"
	"github.com/meridian-obs/meridian/probes/api"
	"github.com/meridian-obs/meridian/probes/icmpengine"
	"github.com/meridian-obs/meridian/probes/server"
)

func TestMain(m *testing.M) { chtest.Main(m) }

// switchable serves the current probe server's handler; the first
// loseAcks result batches are processed but answered 502, as when a
// proxy loses the acknowledgement.
type switchable struct {
	h        atomic.Pointer[http.Handler]
	loseAcks atomic.Int32
}

func (s *switchable) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := *s.h.Load()
	if r.URL.Path == api.PathResults && s.loseAcks.Add(-1) >= 0 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		http.Error(w, "bad gateway", http.StatusBadGateway)
		return
	}
	h.ServeHTTP(w, r)
}

func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			switch {
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
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
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAgentServerClickHouseThroughOutage(t *testing.T) {
	scfg := chtest.Config(t)
	reg := prometheus.NewRegistry()
	st, err := store.New(scfg, store.Deps{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := st.Start(sctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Stop(context.Background()) })
	pcfg := pipeline.DefaultConfig()
	pcfg.FlushInterval = 100 * time.Millisecond
	pcfg.SpoolDir = t.TempDir()
	pl, err := pipeline.New(pcfg, pipeline.Deps{Store: st, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	if err := pl.Start(ctx); err != nil {
		t.Fatal(err)
	}

	// Peers: a UDP echo responder and a closed TCP port (a bad target).
	resp, err := probes.ListenResponder("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithCancel(ctx)
	defer rcancel()
	go resp.Serve(rctx)
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	closedPort := l.Addr().String()
	l.Close()

	stateDir := t.TempDir()
	cfg := server.DefaultConfig()
	cfg.RefreshInterval = time.Second
	cfg.Agents = []server.AgentConfig{{Name: "par1", TokenHash: server.HashToken("s3cret-token")}}
	cfg.Checks = []server.CheckConfig{
		{Name: "udp-echo", Type: "udp", Target: resp.Addr().String(), Count: 5, Spacing: 5 * time.Millisecond,
			Timeout: 500 * time.Millisecond, Interval: time.Second, TargetRegion: "us-east", TargetSite: "nyc"},
		{Name: "tcp-closed", Type: "tcp", Target: closedPort, Count: 1, Timeout: 200 * time.Millisecond, Interval: time.Second, TargetRegion: "us-east"},
		{Name: "icmp-lo", Type: "icmp", Target: "127.0.0.1", Count: 3, Spacing: 10 * time.Millisecond, Timeout: 500 * time.Millisecond,
			Interval: time.Second, Regions: []string{"eu-west"}, TargetRegion: "eu-west"},
	}
	r := config.NewReporter()
	cfg.Validate(r)
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	newServer := func() *server.Server {
		s, err := server.New(cfg, server.Deps{Sink: pl.ProbeResults(), Registry: prometheus.NewRegistry(), StateDir: stateDir})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Start(ctx); err != nil {
			t.Fatal(err)
		}
		return s
	}
	sw := &switchable{}
	srv1 := newServer()
	h := srv1.AgentHandler()
	sw.h.Store(&h)
	sw.loseAcks.Store(2)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	hs := &http.Server{Handler: sw}
	go hs.Serve(ln)

	acfg := agent.DefaultConfig()
	acfg.Name, acfg.Region, acfg.Site = "par1", "eu-west", "par"
	acfg.Server = "http://" + addr
	acfg.Token = config.Secret{Value: "s3cret-token"}
	acfg.SpoolDir = filepath.Join(t.TempDir(), "spool")
	acfg.FlushInterval = 200 * time.Millisecond
	acfg.RetryMin, acfg.RetryMax = 50*time.Millisecond, 200*time.Millisecond
	acfg.RequestTimeout = 2 * time.Second
	acfg.MetricsListen = "127.0.0.1:0"
	if os.Geteuid() != 0 {
		acfg.ICMPEngine = "probing"
	}
	// The real probers, wrapped to record every round the agent keeps:
	// the ground truth of what must arrive in ClickHouse, exactly once.
	rec := &recorder{want: map[roundKey]int{}}
	probers := map[string]probes.Prober{}
	for _, typ := range []string{"udp", "tcp", "icmp"} {
		p, _ := probes.New(typ, nil)
		if typ == "icmp" && os.Geteuid() == 0 {
			e, err := icmpengine.Open(nil)
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			p = e
		}
		probers[typ] = &recording{p: p, rec: rec}
	}
	ag, err := agent.New(acfg, agent.Deps{Probers: probers})
	if err != nil {
		t.Fatal(err)
	}
	if err := ag.Start(ctx); err != nil {
		t.Fatal(err)
	}
	areg := ag.Registry()
	waitFor(t, 15*time.Second, "first deliveries", func() bool { return gauge(t, areg, "meridian_agent_batches_total") >= 3 })

	// Outage: the server goes away; the agent keeps measuring and spools.
	hs.Close()
	srv1.Stop(ctx)
	before := gauge(t, areg, "meridian_agent_results_total")
	waitFor(t, 15*time.Second, "spooled batches", func() bool {
		return gauge(t, areg, "meridian_agent_spool_batches") >= 3 && gauge(t, areg, "meridian_agent_results_total") >= before+9
	})
	spooled := gauge(t, areg, "meridian_agent_spool_batches")
	duringOutage := gauge(t, areg, "meridian_agent_results_total") - before
	if gauge(t, areg, "meridian_agent_send_errors_total") == 0 {
		t.Errorf("no send error counted during the outage")
	}
	// A new server process (same state file) on the same address.
	srv2 := newServer()
	h2 := srv2.AgentHandler()
	sw.h.Store(&h2)
	var ln2 net.Listener
	waitFor(t, 10*time.Second, "rebinding "+addr, func() bool {
		ln2, err = net.Listen("tcp", addr)
		return err == nil
	})
	hs2 := &http.Server{Handler: sw}
	go hs2.Serve(ln2)
	defer hs2.Close()
	waitFor(t, 20*time.Second, "spool drained", func() bool { return gauge(t, areg, "meridian_agent_spool_batches") == 0 })

	sctx2, c2 := context.WithTimeout(ctx, 30*time.Second)
	defer c2()
	if err := ag.Stop(sctx2); err != nil {
		t.Fatal(err)
	}
	if n := gauge(t, areg, "meridian_agent_spool_batches"); n != 0 {
		t.Fatalf("%v batches left in the spool after stop", n)
	}
	produced := uint64(gauge(t, areg, "meridian_agent_results_total"))
	if err := pl.Stop(sctx2); err != nil {
		t.Fatal(err)
	}
	srv2.Stop(ctx)

	// Every recorded round is in probe_results exactly once, and nothing else.
	rows, err := st.Conn().Query(ctx, "SELECT check_name, toUnixTimestamp(time), rtts_us, error FROM probe_results")
	if err != nil {
		t.Fatal(err)
	}
	var count uint64
	left := rec.snapshot()
	for rows.Next() {
		var k roundKey
		var ts uint32
		var rtts []uint32
		if err := rows.Scan(&k.check, &ts, &rtts, &k.err); err != nil {
			t.Fatal(err)
		}
		k.sec, k.rtts = int64(ts), fmt.Sprint(rtts)
		count++
		if left[k] == 0 {
			t.Errorf("row %+v was not produced, or is stored twice", k)
			continue
		}
		left[k]--
	}
	rows.Close()
	for k, n := range left {
		if n != 0 {
			t.Errorf("round %+v produced but missing from probe_results (%d)", k, n)
		}
	}
	if count != produced {
		t.Errorf("probe_results has %d rows; the agent produced %d results", count, produced)
	}
	distinct := count
	var agents, regions, targetRegions uint64
	var refused uint64
	if err := st.Conn().QueryRow(ctx, `SELECT uniqExact(agent), countIf(src_region = 'eu-west' AND src_site = 'par'),
		countIf(target_region != ''), countIf(check_name = 'tcp-closed' AND error = 'refused' AND loss_ratio = 1) FROM probe_results`).Scan(&agents, &regions, &targetRegions, &refused); err != nil {
		t.Fatal(err)
	}
	if agents != 1 || regions != count || targetRegions != count || refused == 0 {
		t.Errorf("agents %d, rows with source region/site %d, with target region %d (of %d); refused rounds %d", agents, regions, targetRegions, count, refused)
	}
	var good, total uint64
	if err := st.Conn().QueryRow(ctx, `SELECT sum(received), sum(sent) FROM probe_results WHERE check_name IN ('udp-echo', 'icmp-lo')`).Scan(&good, &total); err != nil {
		t.Fatal(err)
	}
	// Healthy loopback peers answer; a round that waits past its timeout on
	// a saturated test machine is real loss to the prober, so allow 5%.
	if total == 0 || float64(good) < 0.95*float64(total) {
		t.Errorf("udp/icmp to healthy loopback peers: %d of %d packets answered", good, total)
	}
	var dups float64
	mfs, _ := areg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "meridian_agent_batches_total" {
			for _, m := range mf.GetMetric() {
				if m.GetLabel()[0].GetValue() == "duplicate" {
					dups = m.GetCounter().GetValue()
				}
			}
		}
	}
	// A batch whose acknowledgement was lost was re-sent and recognised as
	// a duplicate: stored once. (Both lost acks may hit the same batch.)
	if dups < 1 {
		t.Errorf("duplicate acknowledgements %v, want at least 1", dups)
	}
	t.Logf("agent produced %d results (%v during the outage, up to %v batches spooled); probe_results has %d rows, %d matched one produced round each; %v re-sent batches deduplicated",
		produced, duringOutage, spooled, count, distinct, dups)
	if d := gauge(t, reg, "meridian_pipeline_rows_dropped_total"); d != 0 {
		t.Errorf("pipeline dropped %v rows", d)
	}
}

type roundKey struct {
	check string
	sec   int64
	rtts  string
	err   string
}

type recorder struct {
	mu   sync.Mutex
	want map[roundKey]int
}

func (r *recorder) snapshot() map[roundKey]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[roundKey]int, len(r.want))
	for k, v := range r.want {
		out[k] = v
	}
	return out
}

type recording struct {
	p   probes.Prober
	rec *recorder
}

// Probe records the rounds the agent keeps (it drops those whose context
// ended: interrupted by a stop).
func (w *recording) Probe(ctx context.Context, c probes.Check) probes.Result {
	res := w.p.Probe(ctx, c)
	if ctx.Err() == nil {
		k := roundKey{check: c.Name, sec: res.Time.UTC().Unix(), rtts: fmt.Sprint(res.RTTsUs), err: res.Error}
		w.rec.mu.Lock()
		w.rec.want[k]++
		w.rec.mu.Unlock()
	}
	return res
}
