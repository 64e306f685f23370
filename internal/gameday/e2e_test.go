package gameday

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meridian-obs/meridian/internal/app"
	"github.com/meridian-obs/meridian/internal/config"
	"github.com/meridian-obs/meridian/internal/gameday/timeline"
	"github.com/meridian-obs/meridian/internal/testutil/chtest"
	"github.com/meridian-obs/meridian/pipeline"
	"github.com/meridian-obs/meridian/pipeline/record"
	"github.com/meridian-obs/meridian/pipeline/store"
	"github.com/meridian-obs/meridian/probes/server"
	"github.com/meridian-obs/meridian/web"
)

func TestMain(m *testing.M) { chtest.Main(m) }

type harness struct {
	net    *Network
	app    *app.App
	runner *Runner
	url    string
}

const apiToken = "gameday-test-token"

func testLog(t *testing.T) *slog.Logger {
	if testing.Verbose() && os.Getenv("GAMEDAY_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// seedHistory writes `span` of healthy probe results before `end` for every
// region at the live rate (3 agents × 5 packets every 2 s = 7.5 packets/s per
// region), one row per agent, region and minute. A long-running Meridian has
// this history; without it the SLO's long windows would hold only the test's
// minutes and the burn-rate arithmetic of the issue would not apply.
func seedHistory(t *testing.T, ctx context.Context, sink record.Sink[record.ProbeResult], n *Network, end time.Time, span time.Duration) int {
	t.Helper()
	written := 0
	const perMinute = 150 // 5 packets every 2 s
	rtts := make([]uint32, perMinute)
	for i := range rtts {
		rtts[i] = 300 + uint32(i%50)
	}
	var rows []record.ProbeResult
	for ts := end.Add(-span).Truncate(time.Minute); ts.Before(end.Truncate(time.Minute)); ts = ts.Add(time.Minute) {
		for _, src := range n.Regions {
			for _, dst := range n.Regions {
				rows = append(rows, record.ProbeResult{Time: ts, Agent: "agent-" + src.Name, SrcRegion: src.Name, SrcSite: src.Name + "-1",
					Check: "udp-edge-" + dst.Name, ProbeType: "udp", Target: dst.UDPAddr(), TargetRegion: dst.Name, TargetSite: dst.Name + "-1",
					Sent: perMinute, Received: perMinute, RTTsUs: rtts, RTTAvgMs: 0.32})
			}
		}
		if len(rows) >= 20000 {
			must(t, sink.Write(ctx, rows))
			written += len(rows)
			rows = rows[:0]
		}
	}
	must(t, sink.Write(ctx, rows))
	return written + len(rows)
}

// seed writes the history through a pipeline of its own and waits until
// ClickHouse holds it: the SLO engine back-fills what ClickHouse holds when
// it starts (rows older than its late window that arrive later are not
// counted).
func seed(t *testing.T, chCfg store.Config, n *Network, dir string) {
	t.Helper()
	ctx := context.Background()
	log := testLog(t)
	reg := prometheus.NewRegistry()
	st, err := store.New(chCfg, store.Deps{Log: log, Registry: reg, StateDir: dir})
	must(t, err)
	must(t, st.Start(ctx))
	defer func() { _ = st.Stop(ctx) }()
	pc := pipeline.DefaultConfig()
	pc.SpoolDir = "seed-spool"
	pipe, err := pipeline.New(pc, pipeline.Deps{Log: log, Registry: reg, Store: st, StateDir: dir})
	must(t, err)
	must(t, pipe.Start(ctx))
	seeded := seedHistory(t, ctx, pipe.ProbeResults(), n, time.Now(), 72*time.Hour)
	must(t, pipe.Stop(ctx))
	var got uint64
	must(t, st.Conn().QueryRow(ctx, "SELECT count() FROM probe_results").Scan(&got))
	if got != uint64(seeded) {
		t.Fatalf("seeded %d rows, ClickHouse holds %d", seeded, got)
	}
}

// startHarness runs the simulated network and the real Meridian server
// (internal/app) configured with the network's sections, as `meridian
// gameday` does.
func startHarness(t *testing.T, dryRun bool) *harness {
	t.Helper()
	for _, b := range []string{"named", "tsig-keygen", "gobgpd", "gobgp"} {
		if err := NeedPrograms(b); err != nil {
			chtest.Unavailable(t, "%v", err)
		}
	}
	ctx := context.Background()
	log := testLog(t)
	dir := t.TempDir()
	n, err := Start(ctx, Options{Dir: dir, DryRun: dryRun, Log: log})
	if err != nil {
		if errors.Is(err, ErrMissingPeer) {
			chtest.Unavailable(t, "%v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	h := &harness{net: n}
	chCfg := chtest.Config(t)
	// Three days of healthy history, so that the 1h…3d windows are full.
	seed(t, chCfg, n, dir)

	cfg := app.DefaultConfig()
	cfg.StateDir = dir
	cfg.ClickHouse = chCfg
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.HTTP.Tokens = []web.TokenConfig{{Name: "test", Role: web.RoleViewer, SHA256: server.HashToken(apiToken)}}
	cfg.Probes = n.ProbesConfig()
	cfg.SLO = n.SLOConfig(5 * time.Second)
	cfg.Alerting = n.AlertingConfig()
	cfg.Runbooks = n.RunbooksConfig()
	cfg.Flows.NetFlowListen, cfg.Flows.SFlowListen = "", ""
	r := config.NewReporter()
	cfg.Validate(r)
	must(t, r.Err())
	h.app, err = app.New(cfg, log)
	must(t, err)
	must(t, h.app.Start(ctx))
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		_ = h.app.Stop(sctx)
	})
	h.url = h.app.Web.URL()
	must(t, n.StartAgents(ctx, h.url))
	h.runner = NewRunner(n, h.app.Alerting, h.app.Runbooks, h.app.Store.Conn, cfg.Runbooks.DryRun, log)
	return h
}

func (h *harness) get(t *testing.T, path string, v any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, h.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+apiToken)
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: HTTP %d %s", path, resp.StatusCode, b)
	}
	must(t, json.NewDecoder(resp.Body).Decode(v))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// waitHealthy waits until every region has SLO data, none burns, the BGP
// session is up and the peer holds every region prefix.
func (h *harness) waitHealthy(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	why := ""
	for time.Now().Before(deadline) {
		time.Sleep(time.Second)
		ok := true
		for _, r := range h.net.Regions {
			burning, known, _ := SLOStatus{h.app.SLO}.GroupStatus(context.Background(), SLOName, r.Name)
			st, _ := h.app.SLO.Status(SLOName, r.Name)
			if !known || burning || st.Backfilling {
				ok, why = false, r.Name+": no data, burning or back-filling"
			}
			if rib, _ := h.net.BGP.RIB(context.Background(), h.net.Prefixes[r.Name]); rib == "" {
				ok, why = false, "peer has no route for "+h.net.Prefixes[r.Name]
			}
		}
		if ok {
			return
		}
	}
	t.Fatalf("the simulated network never became healthy: %s", why)
}

// observer polls BIND and the BGP peer and records when the drill region's
// DNS name and prefix change, and whether any other region's do.
type observer struct {
	mu             sync.Mutex
	base           Snapshot
	dnsAt, bgpAt   time.Time
	dnsVal, bgpVal string
	otherChanges   []string
	stop           chan struct{}
	done           chan struct{}
	region         string
}

func (h *harness) observe(t *testing.T, region string) *observer {
	base, err := h.net.Snapshot(context.Background())
	must(t, err)
	o := &observer{base: base, region: region, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(o.done)
		tk := time.NewTicker(250 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-o.stop:
				return
			case <-tk.C:
			}
			s, err := h.net.Snapshot(context.Background())
			if err != nil {
				continue
			}
			now := time.Now()
			o.mu.Lock()
			for k, v := range s {
				if v == o.base[k] {
					continue
				}
				switch k {
				case "dns/" + region:
					if o.dnsAt.IsZero() {
						o.dnsAt, o.dnsVal = now, v
					}
				case "bgp/" + region:
					if o.bgpAt.IsZero() {
						o.bgpAt, o.bgpVal = now, v
					}
				default:
					o.otherChanges = append(o.otherChanges, k+": "+o.base[k]+" → "+v)
				}
			}
			o.mu.Unlock()
		}
	}()
	return o
}

func (o *observer) finish() { close(o.stop); <-o.done }

func TestGameDayEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("the end-to-end game day takes about 8 minutes")
	}
	h := startHarness(t, false)
	h.waitHealthy(t)
	ctx := context.Background()
	before, err := h.net.Snapshot(ctx)
	must(t, err)
	t.Logf("network before: %v", before)

	// Live runbooks: a drill refuses without --allow-live.
	if _, err := h.runner.Run(ctx, Drill{Region: "eu", Fault: Fault{Outage: true}}); !errors.Is(err, ErrLive) {
		t.Fatalf("drill against live runbooks without AllowLive: err = %v, want ErrLive", err)
	}
	if f := h.net.Region("eu").Fault(); !f.Healthy() {
		t.Fatalf("a refused drill left fault %v", f)
	}

	// 1. A 20-second blip (full outage of ap for 20 s) leads to no action.
	obs := h.observe(t, "ap")
	blip, err := h.runner.Run(ctx, Drill{Region: "ap", Fault: Fault{Outage: true}, Hold: 20 * time.Second, Settle: 40 * time.Second, AllowLive: true})
	obs.finish()
	must(t, err)
	t.Logf("blip:\n%s", timeline.FormatResult(blip))
	if blip.Detect != nil || blip.Act != nil || blip.Outcome != OutcomeNoAlert {
		t.Errorf("a 20 s blip: detect %v act %v outcome %s; want no alert and no action", blip.Detect, blip.Act, blip.Outcome)
	}
	if !obs.dnsAt.IsZero() || !obs.bgpAt.IsZero() || len(obs.otherChanges) > 0 {
		t.Errorf("a blip changed the network: dns %q bgp %q others %v", obs.dnsVal, obs.bgpVal, obs.otherChanges)
	}
	if runs := h.app.Runbooks.Runs(); len(runs) != 0 {
		t.Errorf("a blip started %d runbook run(s): %+v", len(runs), runs)
	}
	if a, d := h.net.Region("ap").Counts(); d == 0 || a == 0 {
		t.Errorf("the blip dropped %d and answered %d packets: the fault did not reach the probes", d, a)
	}

	// 2. A full outage of eu: DNS failover on BIND and the BGP change on the
	// peer within 65 s of the fault; when it is removed the alert resolves
	// and the restore runs; the other regions do not change.
	obs = h.observe(t, "eu")
	var progress []string
	out, err := h.runner.Run(ctx, Drill{Region: "eu", Fault: Fault{Outage: true}, MaxHold: 3 * time.Minute, RecoverTimeout: 10 * time.Minute,
		AllowLive: true, Progress: func(e Event) { progress = append(progress, e.Kind) }})
	obs.finish()
	must(t, err)
	t.Logf("outage:\n%s", timeline.FormatResult(out))
	for _, e := range out.Events {
		t.Logf("  %+7.1fs %-3s %-15s %s", e.Offset, e.Region, e.Kind, e.Detail)
	}
	if out.Detect == nil || out.Act == nil {
		t.Fatalf("outage not detected or not acted on: %+v", out)
	}
	dnsAfter, bgpAfter := obs.dnsAt.Sub(out.Start).Seconds(), obs.bgpAt.Sub(out.Start).Seconds()
	t.Logf("MEASURED: time to detect %.1fs, time to act %.1fs, DNS failover seen on BIND at %.1fs (%s), BGP change seen on the peer at %.1fs (%s), time to recover %v, restore %v (after the fault was removed at %.1fs)",
		*out.Detect, *out.Act, dnsAfter, obs.dnsVal, bgpAfter, obs.bgpVal, fmtp(out.Recover), fmtp(out.Restore), out.FaultHeld)
	if obs.dnsAt.IsZero() || dnsAfter > 65 {
		t.Errorf("DNS failover on BIND %.1fs after the fault (seen: %v); want within 65 s", dnsAfter, !obs.dnsAt.IsZero())
	}
	if obs.bgpAt.IsZero() || bgpAfter > 65 {
		t.Errorf("BGP change on the peer %.1fs after the fault (seen: %v); want within 65 s", bgpAfter, !obs.bgpAt.IsZero())
	}
	if want := h.net.Region("ap").Addr; !strings.Contains(obs.dnsVal, "30 "+want) && !strings.Contains(obs.dnsVal, "30 "+h.net.Region("us").Addr) {
		t.Errorf("edge-eu during the failover = %q; want a healthy region's address with TTL 30", obs.dnsVal)
	}
	if !strings.Contains(obs.bgpVal, "65001 65001 65001 65001") {
		t.Errorf("peer route for %s during the failover = %q; want the speaker's AS prepended 3 times", h.net.Prefixes["eu"], obs.bgpVal)
	}
	if len(obs.otherChanges) > 0 {
		t.Errorf("other regions changed during the outage drill: %v", obs.otherChanges)
	}
	if out.Outcome != OutcomeRecovered || out.Recover == nil || out.Restore == nil {
		t.Errorf("outcome %s, recover %v, restore %v; want recovered with the restore done", out.Outcome, fmtp(out.Recover), fmtp(out.Restore))
	}
	if out.OtherRegionsChanged {
		t.Error("the drill reports changes in other regions")
	}
	after, err := h.net.Snapshot(ctx)
	must(t, err)
	if d := before.Diff(after); len(d) > 0 {
		t.Errorf("the network is not as it was after the drills: %v", d)
	}
	if len(progress) == 0 {
		t.Error("no progress events")
	}

	// 3. The timeline is stored in ClickHouse and served by the server's API.
	var list struct {
		Gamedays []Result           `json:"gamedays"`
		Summary  []timeline.Summary `json:"summary"`
	}
	h.get(t, "/api/v1/gamedays", &list)
	if len(list.Gamedays) != 2 || list.Gamedays[0].ID != out.ID || list.Gamedays[1].ID != blip.ID {
		t.Fatalf("GET /api/v1/gamedays = %+v; want the outage then the blip", list.Gamedays)
	}
	if g := list.Gamedays[0]; g.Detect == nil || *g.Detect != *out.Detect || g.Outcome != OutcomeRecovered {
		t.Errorf("stored outage drill = %+v", g)
	}
	var one Result
	h.get(t, "/api/v1/gamedays/"+out.ID, &one)
	if len(one.Events) != len(out.Events) {
		t.Errorf("stored timeline has %d events, the drill %d", len(one.Events), len(out.Events))
	}
	kinds := map[string]bool{}
	for _, e := range one.Events {
		kinds[e.Kind] = true
	}
	for _, k := range []string{EvFaultInjected, EvAlertFiring, EvAction, EvFaultRemoved, EvAlertResolved, EvRestoreDone} {
		if !kinds[k] {
			t.Errorf("stored timeline has no %s event", k)
		}
	}
}

func fmtp(v *float64) string {
	if v == nil {
		return "none"
	}
	b, _ := json.Marshal(*v)
	return string(b) + "s"
}
