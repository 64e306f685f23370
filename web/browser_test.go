package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/chromedp/chromedp"

	"github.com/meridian-obs/meridian/internal/config"
	"github.com/meridian-obs/meridian/internal/gameday/timeline"
	"github.com/meridian-obs/meridian/internal/testutil/chtest"
	"github.com/meridian-obs/meridian/runbooks"
)

// seedSLO writes 6 hours of evaluator output (slo_status) for two SLOs in
// three regions, one of them burning in eu-west, and alert state changes.
func seedSLO(t testing.TB, conn driver.Conn, now time.Time) {
	t.Helper()
	ctx := context.Background()
	b, err := conn.PrepareBatch(ctx, `INSERT INTO slo_status (time, slo, grp, objective, has_data, stale, good, total, sli,
		budget_remaining, burn_windows, burn_rates, burn_has_data, firing)`)
	if err != nil {
		t.Fatal(err)
	}
	windows := []string{"5m", "30m", "1h", "6h", "window"}
	for i := 72; i >= 0; i-- {
		ts := now.Add(-time.Duration(i) * 5 * time.Minute).Truncate(time.Second)
		for _, slo := range []string{"checkout-latency", "dns-availability"} {
			for _, g := range seedRegions {
				budget, burn := 0.9, 0.4
				var firing []string
				if slo == "checkout-latency" && g == "eu-west" && i < 24 {
					budget = 0.9 - 0.03*float64(24-i) // burning down
					burn = 16
					firing = []string{"page-1h-5m"}
				}
				sli := 1 - (1-budget)*(1-0.999)
				if firing == nil {
					firing = []string{}
				}
				if err := b.Append(ts, slo, g, 0.999, uint8(1), uint8(0), uint64(99900), uint64(100000), sli, budget,
					windows, []float64{burn, burn, burn, burn / 2, 0.1}, []uint8{1, 1, 1, 1, 1}, firing); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	b, err = conn.PrepareBatch(ctx, `INSERT INTO alerts (time, fingerprint, source, status, alertname, slo, severity, label_names,
		label_values, annotation_names, annotation_values, starts_at, ends_at)`)
	if err != nil {
		t.Fatal(err)
	}
	start := now.Add(-2 * time.Hour).Truncate(time.Second)
	ln := []string{"alertname", "slo", "region", "severity"}
	must(t, b.Append(start, "fp-eu", "meridian", "firing", "SLOBurnRateHigh", "checkout-latency", "page", ln,
		[]string{"SLOBurnRateHigh", "checkout-latency", "eu-west", "page"}, []string{"summary"}, []string{"checkout-latency burns 16× in eu-west"}, start, time.Unix(0, 0)))
	must(t, b.Append(start.Add(-3*time.Hour), "fp-us", "meridian", "firing", "SLOBurnRateHigh", "dns-availability", "ticket", ln,
		[]string{"SLOBurnRateHigh", "dns-availability", "us-east", "ticket"}, []string{"summary"}, []string{"dns blip"}, start.Add(-3*time.Hour), time.Unix(0, 0)))
	must(t, b.Append(start.Add(-150*time.Minute), "fp-us", "meridian", "resolved", "SLOBurnRateHigh", "dns-availability", "ticket", ln,
		[]string{"SLOBurnRateHigh", "dns-availability", "us-east", "ticket"}, []string{"summary"}, []string{"dns blip"}, start.Add(-3*time.Hour), start.Add(-150*time.Minute)))
	must(t, b.Send())
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// staticStatus tells the runbooks executor every region exists and only
// eu-west burns.
type staticStatus struct{}

func (staticStatus) GroupStatus(_ context.Context, _, group string) (bool, bool, error) {
	return group == "eu-west", true, nil
}
func (staticStatus) Groups(string) []string { return seedRegions }

const approvalRunbook = `
runbooks:
  - name: notify-ops
    trigger:
      match: 'slo=checkout-latency, severity=page'
    params:
      region: '{{ .Labels.region }}'
    approval: {required: true, timeout: 30m}
    steps:
      - name: tell-ops
        webhook:
          endpoint: ops
          event: region.degraded
          data:
            region: '{{ .Params.region }}'
`

// startRunbooks runs the real runbooks executor with a webhook receiver on
// loopback; it returns the executor and a counter of received webhooks.
func startRunbooks(t *testing.T) (*runbooks.Executor, func() int) {
	t.Helper()
	var mu sync.Mutex
	hits := 0
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rcv.Close)
	cfg := runbooks.DefaultConfig()
	cfg.DefaultCooldown = 0
	cfg.BlastRadius = 3
	sf := filepath.Join(t.TempDir(), "whsec")
	must(t, os.WriteFile(sf, []byte("whsec_bWVyaWRpYW4tdGVzdC13ZWJob29rLWtleQ=="), 0o600))
	cfg.Webhook.Allow = []string{strings.TrimPrefix(rcv.URL, "http://")}
	cfg.Webhook.Endpoints = map[string]runbooks.WebhookEndpoint{"ops": {URL: rcv.URL + "/hook",
		Secret: secretFromFile(sf), Timeout: 2 * time.Second, Attempts: 1, Backoff: 10 * time.Millisecond}}
	e, err := runbooks.New(cfg, runbooks.Deps{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Status: staticStatus{}})
	must(t, err)
	rbs, err := runbooks.Parse("test.yaml", []byte(approvalRunbook), &cfg)
	must(t, err)
	e.SetRunbooks(rbs)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	must(t, e.Start(ctx))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = e.Stop(ctx)
	})
	return e, func() int { mu.Lock(); defer mu.Unlock(); return hits }
}

// waitingRun fires an alert for region and returns the run waiting for
// approval.
func waitingRun(t *testing.T, e *runbooks.Executor, region string) string {
	t.Helper()
	fp := "fp-" + region
	e.HandleAlert(runbooks.Alert{Status: runbooks.StatusFiring, StartsAt: time.Now(), Fingerprint: fp,
		Labels: map[string]string{"alertname": "SLOBurnRateHigh", "slo": "checkout-latency", "severity": "page", "region": region}})
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if id, ok := e.RunForAlert("notify-ops", fp); ok {
			if r, _ := e.GetRun(id); r.State == runbooks.StateAwaitingApproval {
				return id
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no run awaiting approval for %s", region)
	return ""
}

// seedGameday stores one finished drill (as `meridian gameday` does).
func seedGameday(t *testing.T, conn driver.Conn, now time.Time) {
	t.Helper()
	f := func(v float64) *float64 { return &v }
	r := &timeline.Result{ID: "gd-test-1", Region: "ap-south", Fault: "outage", Start: now.Add(-2 * time.Hour),
		End: now.Add(-2*time.Hour + 6*time.Minute), Detect: f(56.9), Act: f(57.2), Recover: f(274), Restore: f(275),
		FaultHeld: 60, Outcome: "recovered",
		Events: []timeline.Event{{At: now.Add(-2 * time.Hour), Region: "ap-south", Kind: "fault", Detail: "outage injected"}}}
	if err := timeline.Store(context.Background(), conn, r); err != nil {
		t.Fatal(err)
	}
}

// mountRunbooks mounts the runbooks API as the lead should in internal/app:
// reads for viewers, decisions for operators (the executor checks the role
// again).
func mountRunbooks(s *Server, e *runbooks.Executor) {
	s.MountRunbooks(e.Handler(Identity))
}

type browser struct {
	t   *testing.T
	ctx context.Context
	dir string

	mu   sync.Mutex
	msgs []chromedp.ConsoleMessage
	// expected are URLs whose error status the test caused on purpose.
	expected []string
	// base is the URL of the server that runs the runbooks API.
	base string
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	path := "/usr/bin/chromium"
	if _, err := exec.LookPath(path); err != nil {
		chtest.Unavailable(t, "no chromium at %s (Debian package chromium)", path)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-features", "Translate,OptimizationHints,MediaRouter"),
		chromedp.Flag("no-pings", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 10*time.Minute)
	t.Cleanup(func() { cancelT(); cancelC(); cancelA() })
	b := &browser{t: t, ctx: ctx, dir: t.TempDir()}
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		chtest.Unavailable(t, "chromium does not start: %v", err)
	}
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.msgs = append(b.msgs, m)
			b.mu.Unlock()
		}
	}()
	return b
}

func (b *browser) do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		b.t.Fatalf("browser: %v", err)
	}
}

func (b *browser) eval(js string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](js))
	if err != nil {
		b.t.Fatalf("eval %s: %v", js, err)
	}
	return v
}

func (b *browser) evalInt(js string) int {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[int](js))
	if err != nil {
		b.t.Fatalf("eval %s: %v", js, err)
	}
	return v
}

// open loads a dashboard route and waits until its data is rendered.
func (b *browser) open(url string) {
	b.t.Helper()
	// Through about:blank so that a change of the fragment alone is a
	// fresh page load too.
	// A page that never renders fails in 30 s, showing what it shows,
	// instead of using up the browser's 4 minutes.
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank"), chromedp.Navigate(url), chromedp.WaitVisible(`#view[aria-busy="false"]`)); err != nil {
		text, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.body.innerText`))
		b.t.Fatalf("open %s: %v; the page shows:\n%s\nconsole:\n%s", url, err, text, strings.Join(b.errors(), "\n"))
	}
}

// rerendered waits for the render after an in-page change (filter, click).
func (b *browser) rerendered(before string) {
	b.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if v := b.eval(`(document.getElementById("view").getAttribute("data-rendered")||"")+"/"+document.getElementById("view").getAttribute("aria-busy")`); v != before+"/false" && strings.HasSuffix(v, "/false") {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.t.Fatal("the view did not re-render")
}

func (b *browser) rendered() string {
	return b.eval(`document.getElementById("view").getAttribute("data-rendered")||""`)
}

func (b *browser) screenshot(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot: %v", err)
	}
	p := filepath.Join(b.dir, name+".png")
	must(b.t, os.WriteFile(p, png, 0o644))
	if d := os.Getenv("MERIDIAN_SCREENSHOTS"); d != "" {
		_ = os.MkdirAll(d, 0o755)
		_ = os.WriteFile(filepath.Join(d, name+".png"), png, 0o644)
	}
	b.t.Logf("screenshot %s", p)
}

// errors returns the console errors so far, except the 404s of the APIs of
// components this test does not run (alerting's /api/v1/alerts, the probe
// server's /api/v1/agents and the SLO engine's /api/v1/slos/{name}): the
// pages show an empty state for them.
func (b *browser) errors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, m := range b.msgs {
		if m.Type != chromedp.ConsoleError && m.Type != chromedp.ConsoleException && m.Type != chromedp.ConsoleWarning {
			continue
		}
		if m.Source == "network" && slices.Contains(b.expected, m.URL) {
			continue
		}
		if m.Source == "network" && strings.Contains(m.Text, "404") &&
			(strings.HasSuffix(m.URL, "/api/v1/alerts") || strings.HasSuffix(m.URL, "/api/v1/agents") ||
				strings.Contains(m.URL, "/api/v1/runbooks/runs") && !strings.HasPrefix(m.URL, b.base) ||
				strings.Contains(m.URL, "/api/v1/slos/") && !strings.Contains(m.URL, "/history")) {
			continue
		}
		out = append(out, fmt.Sprintf("%s %s %s", m.Type, m.URL, m.Text))
	}
	return out
}

func (b *browser) login(user, pw string) {
	b.t.Helper()
	// By keyboard: type into the form and press Enter.
	b.do(chromedp.WaitVisible(`#l-user`), chromedp.SendKeys(`#l-user`, user), chromedp.SendKeys(`#l-pass`, pw+"\r"))
	// Then wait for the signed-in page: the header names the user once the
	// login answered (a PBKDF2 hash: ~0.1 s or more), then its render
	// ends. Waiting only for #view[aria-busy=false] returned at once after a
	// logout (the previous page's view still says false), and the next
	// navigation aborted the login before its cookie was set.
	deadline := time.Now().Add(20 * time.Second)
	for !strings.HasPrefix(b.eval(`document.getElementById("login").hidden ? document.getElementById("who").textContent : ""`), user+" (") {
		if time.Now().After(deadline) {
			b.t.Fatalf("login as %s: not signed in after 20 s; the form says %q", user, b.eval(`document.getElementById("login-error").textContent`))
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.do(chromedp.WaitVisible(`#view[aria-busy="false"]`))
}

func TestDashboardInBrowser(t *testing.T) {
	conn, _ := chtest.DB(t)
	now := time.Now().UTC()
	seed(t, conn, now)
	seedSLO(t, conn, now)
	exe, webhooks := startRunbooks(t)
	runEU := waitingRun(t, exe, "eu-west")

	seedGameday(t, conn, now)
	s := startServer(t, conn, t.TempDir(), func(s *Server) {
		mountRunbooks(s, exe)
		gd := timeline.Handler(func() driver.Conn { return conn })
		s.Mount("GET /api/v1/gamedays", Viewer, gd)
		s.Mount("GET /api/v1/gamedays/{id}", Viewer, gd)
	})
	must(t, s.Users().Add("olivia", RoleOperator, "operator-password-1"))
	must(t, s.Users().Add("vic", RoleViewer, "viewer-password-1"))
	base := s.URL() + "/"

	b := newBrowser(t)
	b.base = base
	b.do(chromedp.Navigate(base), chromedp.WaitVisible(`#login`))
	if got := b.evalInt(`document.querySelectorAll("#view *").length`); got != 0 {
		t.Fatalf("the login page shows %d elements of data", got)
	}
	b.screenshot("00-login")
	b.login("olivia", "operator-password-1")

	type pageCheck struct {
		route     string
		minCharts int      // charts with data points
		texts     []string // must appear in the view
	}
	pages := []pageCheck{
		{"overview", 0, []string{"checkout-latency", "dns-availability", "eu-west", "Runbook runs awaiting approval", runEU,
			"The alerting API is not enabled", "The agents API is not enabled"}},
		{"slo/checkout-latency?region=eu-west", 3, []string{"Time to exhaustion", "SLOBurnRateHigh", runEU}},
		{"probes", 3, []string{"web.eu-west.example:443", "ap-south", "The agents API is not enabled"}},
		{"flows", 1, []string{"ap-south → eu-west", "tcp/22", "10.2.0."}},
		{"firewall", 1, []string{"drop-ssh", "fw-eu-1", "203.0.113."}},
		{"alerts", 0, []string{"SLOBurnRateHigh", "dns blip", "resolved"}},
		{"runs", 0, []string{"notify-ops", "awaiting_approval"}},
		{"run/" + runEU, 0, []string{"tell-ops", "Audit log", "Approve"}},
		{"gamedays", 0, []string{"Per region", "MTTD", "57 s", "outage", "ap-south"}},
	}
	for i, p := range pages {
		t.Run(strings.SplitN(p.route, "?", 2)[0], func(t *testing.T) {
			b.t = t
			b.open(base + "#/" + p.route)
			text := b.eval(`document.getElementById("view").innerText`)
			for _, want := range p.texts {
				if !strings.Contains(text, want) {
					t.Errorf("view lacks %q:\n%s", want, text)
				}
			}
			n := b.evalInt(`Array.from(document.querySelectorAll("[data-points]")).filter(e => +e.getAttribute("data-points") > 10 && e.querySelector("canvas")).length`)
			if n < p.minCharts {
				t.Errorf("%d charts with data, want ≥ %d", n, p.minCharts)
			}
			b.screenshot(fmt.Sprintf("%02d-%s", i+1, strings.NewReplacer("/", "-", "?", "-", "=", "-").Replace(p.route)))
		})
	}
	b.t = t

	// #16: every time chart spans exactly the selected range, read from the
	// chart's own x scale, however little data it has (the seeds cover 6 h;
	// the range asked is 7 days), and a zoom is kept.
	t.Run("time axes span the selected range", func(t *testing.T) {
		b.t = t
		const week = 7 * 24 * 3600
		for _, page := range []string{"probes", "flows", "firewall", "slo/checkout-latency?region=eu-west"} {
			sep := "?"
			if strings.Contains(page, "?") {
				sep = "&"
			}
			b.open(base + "#/" + page + sep + "range=7d")
			got := b.eval(`JSON.stringify(Array.from(document.querySelectorAll(".chart")).filter(e => e.uplot).map(e => [e.getAttribute("data-chart"), e.uplot.scales.x.min, e.uplot.scales.x.max]))`)
			var spans [][3]any
			if err := json.Unmarshal([]byte(got), &spans); err != nil || len(spans) == 0 {
				t.Fatalf("%s: no chart scales (%v): %s", page, err, got)
			}
			now := float64(time.Now().Unix())
			for _, sp := range spans {
				min, _ := sp[1].(float64)
				max, _ := sp[2].(float64)
				if sp[0] == "budget" {
					// The burn-down goes past now with the forecast (checked below).
					if min < now-week-300 || min > now-week+300 || max < now-300 {
						t.Errorf("%s burn-down spans %s … %s; want from 7 days ago to now or later", page,
							time.Unix(int64(min), 0).UTC().Format(time.RFC3339), time.Unix(int64(max), 0).UTC().Format(time.RFC3339))
					}
					continue
				}
				if d := max - min; d < week-120 || d > week+120 {
					t.Errorf("%s chart %v spans %.0f s (%s … %s); want the 7 days selected", page, sp[0], d,
						time.Unix(int64(min), 0).UTC().Format(time.RFC3339), time.Unix(int64(max), 0).UTC().Format(time.RFC3339))
				}
				if max < now-300 || max > now+300 {
					t.Errorf("%s chart %v ends at %s; want now", page, sp[0], time.Unix(int64(max), 0).UTC().Format(time.RFC3339))
				}
			}
		}
		// A zoom (what a drag selection does: setScale with its bounds) holds.
		b.open(base + "#/probes?range=7d")
		// uPlot commits a new scale in a microtask: read it after one.
		zoomed := b.evalIntAwait(`new Promise(function(done){var u=document.querySelector(".chart[data-chart=smoke]").uplot;var z=u.scales.x.max-3600;
			u.setScale("x",{min:z-3600,max:z});setTimeout(function(){done(Math.round(u.scales.x.max-u.scales.x.min))},50)})`)
		if zoomed != 3600 {
			t.Errorf("after a zoom the smoke chart spans %d s; want 3600", zoomed)
		}
	})

	// #16: the alerts table says which rule fired and stays inside its card;
	// a grouped SLO's "(all)" cell shows its worst region, not "no data".
	t.Run("alerts say which rule fired and the overview shows the worst region", func(t *testing.T) {
		b.t = t
		ctx := context.Background()
		bt, err := conn.PrepareBatch(ctx, `INSERT INTO alerts (time, fingerprint, source, status, alertname, slo, severity, label_names,
		label_values, annotation_names, annotation_values, starts_at, ends_at)`)
		must(t, err)
		at := time.Now().UTC().Add(-10 * time.Minute).Truncate(time.Second)
		ln := []string{"alertname", "slo", "region", "severity", "long_window", "short_window"}
		for _, w := range [][2]string{{"1h", "5m"}, {"6h", "30m"}} {
			must(t, bt.Append(at, "fp-rule-"+w[0], "meridian", "firing", "SLOBurnRateHigh", "checkout-latency", "page", ln,
				[]string{"SLOBurnRateHigh", "checkout-latency", "eu-west", "page", w[0], w[1]}, []string{"summary", "description"},
				[]string{"SLO checkout-latency (region eu-west) is burning its error budget 16.00× too fast (page) " + strings.Repeat("and a long summary that must wrap ", 6),
					"Burn rate 16.00 over " + w[0] + " and 15.00 over " + w[1] + " (threshold 14.4)."}, at, time.Unix(0, 0)))
		}
		must(t, bt.Send())
		bs, err := conn.PrepareBatch(ctx, `INSERT INTO slo_status (time, slo, grp, objective, has_data, stale, good, total, sli,
		budget_remaining, burn_windows, burn_rates, burn_has_data, firing)`)
		must(t, err)
		must(t, bs.Append(time.Now().UTC().Truncate(time.Second), "checkout-latency", "", 0.999, uint8(0), uint8(0), uint64(0), uint64(0), 0.0, 0.0,
			[]string{}, []float64{}, []uint8{}, []string{}))
		must(t, bs.Send())

		b.open(base + "#/alerts?range=6h")
		rules := b.eval(`Array.from(document.querySelectorAll("[data-testid=alert-rule]")).map(e => e.textContent).join(",")`)
		for _, want := range []string{"1h / 5m", "6h / 30m"} {
			if !strings.Contains(rules, want) {
				t.Errorf("alert rules %q lack %q", rules, want)
			}
		}
		if over := b.evalInt(`(function(){var t=document.querySelector("[data-testid=alert-events]");var c=t.closest(".card");return t.scrollWidth-c.clientWidth})()`); over > 0 {
			t.Errorf("the alerts table is %d px wider than its card", over)
		}
		b.screenshot("25-alerts-rules")

		b.open(base + "#/overview")
		worst := b.eval(`(function(){var e=document.querySelector("[data-testid='worst-checkout-latency'] a");return e?e.textContent+" "+e.getAttribute("href"):""})()`)
		if !strings.HasPrefix(worst, "worst eu-west") || !strings.Contains(worst, "region=eu-west") {
			t.Errorf(`the "(all)" cell of checkout-latency is %q; want its worst region eu-west, linked`, worst)
		}
		// Sparklines: 24 h of 1 h burn per cell; the seed covers 6 h in
		// 5-minute evaluations, i.e. 12 of the 48 half-hour points.
		spark := b.eval(`JSON.stringify(Array.from(document.querySelectorAll("[data-testid=slo-matrix] svg.spark")).map(e => [e.getAttribute("aria-label"), +e.getAttribute("data-points"), e.querySelectorAll("polyline").length]))`)
		var sparks [][3]any
		must(t, json.Unmarshal([]byte(spark), &sparks))
		found := false
		for _, sp := range sparks {
			if strings.Contains(sp[0].(string), "checkout-latency in eu-west") {
				found = true
				if pts := sp[1].(float64); pts < 12 || pts > 14 {
					t.Errorf("eu-west sparkline has %v points; want the 12-13 half hours of the 6 h seed", pts)
				}
				if sp[2].(float64) < 1 {
					t.Errorf("eu-west sparkline draws no line")
				}
			}
		}
		if !found || len(sparks) < 6 {
			t.Errorf("sparklines %s; want one per SLO and region (6), including checkout-latency in eu-west", spark)
		}
		if txt := b.eval(`document.querySelector("[data-testid=slo-matrix]").innerText`); strings.Contains(txt, "no data") {
			t.Errorf("the overview matrix says \"no data\" for an SLO with data per region:\n%s", txt)
		}
	})

	// #16: a grouped SLO opened on "(all)" shows every region at once,
	// worst first, as an overlay or as small multiples; the burn-down of a
	// burning region draws its forecast to exhaustion.
	t.Run("grouped SLO shows every region and the forecast", func(t *testing.T) {
		b.t = t
		b.open(base + "#/slo/checkout-latency?range=6h")
		regions := b.eval(`Array.from(document.querySelectorAll("[data-testid=every-region] tbody tr")).map(r => r.cells[0].textContent).join(",")`)
		if !strings.HasPrefix(regions, "eu-west,") || strings.Count(regions, ",") != 2 {
			t.Errorf("every-region table lists %q; want the 3 regions, eu-west (burning) first", regions)
		}
		for _, c := range []string{"every-budget", "every-burn"} {
			if n := b.evalInt(`(function(){var e=document.querySelector(".chart[data-chart=` + c + `]");return e&&e.uplot?e.uplot.series.length-1:0})()`); n != 3 {
				t.Errorf("chart %s has %d region series; want 3", c, n)
			}
		}
		b.screenshot("26-slo-every-region")
		before := b.rendered()
		b.do(chromedp.Click(`a[data-action=multiples]`))
		b.rerendered(before)
		if n := b.evalInt(`document.querySelectorAll(".chart[data-chart^=every-]").length`); n != 3 {
			t.Errorf("%d small multiples; want one per region (3)", n)
		}
		b.screenshot("27-slo-small-multiples")

		b.open(base + "#/slo/checkout-latency?region=eu-west&range=7d")
		note := b.eval(`(function(){var e=document.querySelector("[data-testid=tte-note]");return e?e.textContent:""})()`)
		if !strings.Contains(note, "exhausted in") {
			t.Errorf("burn-down note %q; want the forecast's time to exhaustion", note)
		}
		ahead := b.evalInt(`Math.round(document.querySelector(".chart[data-chart=budget]").uplot.scales.x.max - Date.now()/1000)`)
		if ahead < 3600 {
			t.Errorf("the burn-down ends %d s after now; want the forecast drawn hours ahead (budget 18%%, burning 16×)", ahead)
		}
	})

	// #16: a run reads as a timeline, each event linking to the SLO as it
	// was at that moment (the charts end there).
	t.Run("run page is a timeline with the SLO at each moment", func(t *testing.T) {
		b.t = t
		b.open(base + "#/run/" + runEU)
		kinds := b.eval(`Array.from(document.querySelectorAll("[data-testid=run-timeline] li")).map(e => e.getAttribute("data-kind")).join(",")`)
		for _, want := range []string{"trigger", "approval"} { // guardrails and steps follow the approval
			if !strings.Contains(kinds, want) {
				t.Errorf("timeline kinds %q lack %q", kinds, want)
			}
		}
		if !strings.HasPrefix(kinds, "trigger") {
			t.Errorf("timeline %q does not start with the alert (trigger)", kinds)
		}
		link := b.eval(`(function(){var a=document.querySelector("[data-testid=run-timeline] li a");return a?a.getAttribute("href"):""})()`)
		if !strings.Contains(link, "until=") || !strings.Contains(link, "region=eu-west") {
			t.Fatalf("timeline SLO link %q; want the SLO in eu-west until that moment", link)
		}
		b.screenshot("28-run-timeline")
		b.open(base + link)
		if b.evalInt(`document.querySelectorAll("[data-testid=until]").length`) != 1 {
			t.Error("the SLO page does not say it shows a past range")
		}
		until := b.evalInt(`Math.round(Date.parse(new URLSearchParams(location.hash.split("?")[1]).get("until"))/1000)`)
		end := b.evalInt(`Math.round(document.querySelector(".chart[data-chart=sli]").uplot.scales.x.max)`)
		if d := end - until; d < -60 || d > 60 {
			t.Errorf("the SLI chart ends %d s from the linked moment; want it to end there", d)
		}
	})

	t.Run("filters change what is shown", func(t *testing.T) {
		b.t = t
		b.open(base + "#/probes?range=6h")
		rows := `document.querySelectorAll("[data-testid=probe-paths] tbody tr").length`
		if n := b.evalInt(rows); n != 12 {
			t.Fatalf("%d paths, want 12", n)
		}
		before := b.rendered()
		// Pick a region in the filter bar, as a user does (focus, change).
		b.eval(`(function(){var s=document.getElementById("c-region");s.focus();s.value="eu-west";s.dispatchEvent(new Event("change"));return ""})()`)
		b.rerendered(before)
		if n := b.evalInt(rows); n != 6 {
			t.Fatalf("%d paths with region eu-west, want 6", n)
		}
		if !strings.Contains(b.eval(`location.hash`), "region=eu-west") {
			t.Error("the filter is not in the URL")
		}
		// The time range picker: 1 hour holds 12 of the 72 rounds of a path.
		roundsCol := `Array.from(document.querySelectorAll("[data-testid=probe-paths] tbody tr")).map(r => r.cells[7].textContent).join(",")`
		if got := b.eval(roundsCol); !strings.HasPrefix(got, "72,") {
			t.Fatalf("rounds over 6h: %s", got)
		}
		before = b.rendered()
		b.eval(`(function(){var s=document.getElementById("c-range");s.value="1h";s.dispatchEvent(new Event("change"));return ""})()`)
		b.rerendered(before)
		if got := b.eval(roundsCol); !strings.HasPrefix(got, "12,") && !strings.HasPrefix(got, "13,") {
			t.Fatalf("rounds over 1h: %s", got)
		}
		// The smoke chart follows a target picked in the paths table.
		before = b.rendered()
		b.do(chromedp.Click(`[data-testid=probe-paths] a[href*="target=web.us-east"]`))
		b.rerendered(before)
		if !strings.Contains(b.eval(`location.hash`), "target=web.us-east") {
			t.Error("clicking a target does not filter")
		}
		b.screenshot("20-probes-filtered")

		b.open(base + "#/flows?range=6h")
		pairs := `document.querySelectorAll("[data-testid=flow-matrix] td.cell a").length`
		if n := b.evalInt(pairs); n != 3 {
			t.Fatalf("%d matrix cells, want 3", n)
		}
		before = b.rendered()
		b.do(chromedp.Click(`a[href*="proto=udp"]`))
		b.rerendered(before)
		if n := b.evalInt(pairs); n != 1 {
			t.Fatalf("%d matrix cells with proto udp, want 1", n)
		}
	})

	t.Run("operator approves a waiting run", func(t *testing.T) {
		b.t = t
		b.open(base + "#/runs")
		sel := `tr[data-run="` + runEU + `"] button[data-action=approve]`
		before := b.rendered()
		b.do(chromedp.Click(sel))
		b.rerendered(before)
		deadline := time.Now().Add(15 * time.Second)
		for {
			r, _ := exe.GetRun(runEU)
			if r.State == runbooks.StateSucceeded && r.ApprovedBy == "olivia" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("run state %s approved by %q, want succeeded by olivia", r.State, r.ApprovedBy)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if webhooks() != 1 {
			t.Fatalf("%d webhooks sent, want 1", webhooks())
		}
		b.open(base + "#/run/" + runEU)
		text := b.eval(`document.getElementById("view").innerText`)
		if !strings.Contains(text, "olivia") || b.evalInt(`document.querySelectorAll("button[data-action]").length`) != 0 {
			t.Errorf("run detail after approval shows buttons or no approver:\n%s", text)
		}
		b.screenshot("21-run-approved")
	})

	t.Run("viewer cannot approve", func(t *testing.T) {
		b.t = t
		runUS := waitingRun(t, exe, "us-east")
		b.do(chromedp.Click(`#logout`), chromedp.WaitVisible(`#login`))
		b.login("vic", "viewer-password-1")
		b.open(base + "#/run/" + runUS)
		if n := b.evalInt(`document.querySelectorAll("button[data-action]").length`); n != 0 {
			t.Fatalf("a viewer sees %d approve/cancel buttons", n)
		}
		if !strings.Contains(b.eval(`document.getElementById("view").innerText`), "Only operators and admins") {
			t.Error("no explanation for the viewer")
		}
		b.screenshot("22-run-viewer")
		// Forcing the request from the page (with the session's CSRF token) is refused.
		b.mu.Lock()
		b.expected = append(b.expected, s.URL()+"/api/v1/runbooks/runs/"+runUS+"/approve")
		b.mu.Unlock()
		code := b.evalIntAwait(`fetch("/api/v1/session").then(r => r.json()).then(me => fetch("/api/v1/runbooks/runs/` + runUS + `/approve",
			{method: "POST", headers: {"Content-Type": "application/json", "X-CSRF-Token": me.csrf_token}, body: "{}"})).then(r => r.status)`)
		if code != http.StatusForbidden {
			t.Fatalf("viewer approve: HTTP %d, want 403", code)
		}
		if r, _ := exe.GetRun(runUS); r.State != runbooks.StateAwaitingApproval {
			t.Fatalf("run state %s after a viewer's attempt", r.State)
		}
	})

	t.Run("auto-refresh", func(t *testing.T) {
		b.t = t
		b.open(base + "#/overview?refresh=1")
		first := b.rendered()
		deadline := time.Now().Add(10 * time.Second)
		for b.rendered() == first {
			if time.Now().After(deadline) {
				t.Fatal("the page did not refresh by itself")
			}
			time.Sleep(100 * time.Millisecond)
		}
	})

	t.Run("empty states say what to configure", func(t *testing.T) {
		b.t = t
		emptyConn, _ := chtest.DB(t)
		es := startServer(t, emptyConn, t.TempDir(), func(s *Server) {
			gd := timeline.Handler(func() driver.Conn { return emptyConn })
			s.Mount("GET /api/v1/gamedays", Viewer, gd)
			s.Mount("GET /api/v1/gamedays/{id}", Viewer, gd)
		})
		b.do(chromedp.Navigate("about:blank"), chromedp.Navigate(es.URL()+"/"), chromedp.WaitVisible(`#login`))
		b.login(es.admin, es.adminP)
		for route, want := range map[string]string{
			"overview": "No SLO status yet",
			"probes":   "start meridian-agent",
			"flows":    "NetFlow/IPFIX/sFlow exporters",
			"firewall": "Send firewall logs",
			"alerts":   "No alert in this range",
			"runs":     "The runbooks API is not enabled",
		} {
			b.open(es.URL() + "/#/" + route)
			if text := b.eval(`document.getElementById("view").innerText`); !strings.Contains(text, want) {
				t.Errorf("%s: empty state lacks %q:\n%s", route, want, text)
			}
			if n := b.evalInt(`document.querySelectorAll("canvas").length`); n != 0 {
				t.Errorf("%s: %d charts drawn without data", route, n)
			}
		}
		b.screenshot("40-probes-empty")
		// Cookies ignore ports: sign out of the second server and back
		// into the first.
		b.do(chromedp.Click(`#logout`), chromedp.WaitVisible(`#login`))
		b.do(chromedp.Navigate("about:blank"), chromedp.Navigate(base), chromedp.WaitVisible(`#login`))
		b.login("vic", "viewer-password-1")
	})

	t.Run("1920 wide and keyboard", func(t *testing.T) {
		b.t = t
		b.do(chromedp.EmulateViewport(1920, 1080))
		b.open(base + "#/overview")
		if w := b.evalInt(`document.documentElement.scrollWidth`); w > 1920 {
			t.Errorf("page is %d px wide at 1920", w)
		}
		b.screenshot("30-overview-1920")
		b.do(chromedp.EmulateViewport(1280, 900))
		b.open(base + "#/flows")
		if w := b.evalInt(`document.documentElement.scrollWidth`); w > 1280 {
			t.Errorf("page is %d px wide at 1280", w)
		}
		// Tab from the top: skip link first, then the navigation.
		b.do(chromedp.KeyEvent("\t"))
		if got := b.eval(`document.activeElement.className`); got != "skip" {
			t.Errorf("first Tab focuses %q, want the skip link", got)
		}
		b.do(chromedp.KeyEvent("\t"), chromedp.KeyEvent("\t"))
		if got := b.eval(`document.activeElement.getAttribute("data-page")||""`); got != "probes" {
			t.Errorf("third Tab focuses %q, want the Probes link", got)
		}
		before := b.rendered()
		b.do(chromedp.KeyEvent("\r"))
		b.rerendered(before)
		if !strings.HasPrefix(b.eval(`location.hash`), "#/probes") {
			t.Errorf("Enter on the Probes link went to %s", b.eval(`location.hash`))
		}
	})

	// #16: every page at 1280 and 1920 px, on the seeded database and on an
	// empty one: a screenshot each (kept under $MERIDIAN_SCREENSHOTS when
	// set), no horizontal overflow, every time chart spanning the selected
	// range by its own uPlot scale, every empty state saying what to do next.
	t.Run("every page at 1280 and 1920, seeded and empty", func(t *testing.T) {
		b.t = t
		emptyConn, _ := chtest.DB(t)
		es := startServer(t, emptyConn, t.TempDir(), func(s *Server) {
			gd := timeline.Handler(func() driver.Conn { return emptyConn })
			s.Mount("GET /api/v1/gamedays", Viewer, gd)
			s.Mount("GET /api/v1/gamedays/{id}", Viewer, gd)
		})
		must(t, es.Users().Add("vic", RoleViewer, "viewer-password-1"))
		routes := []string{"overview", "slo/checkout-latency?region=eu-west", "probes", "flows", "firewall", "alerts", "runs", "gamedays"}
		for _, set := range []struct{ name, base string }{{"seeded", base}, {"empty", es.URL() + "/"}} {
			if set.name == "empty" {
				b.do(chromedp.Navigate("about:blank"), chromedp.Navigate(set.base), chromedp.WaitVisible(`#login`))
				b.login("vic", "viewer-password-1")
			}
			for _, width := range []int64{1280, 1920} {
				b.do(chromedp.EmulateViewport(width, 1000))
				for _, route := range routes {
					sep := "?"
					if strings.Contains(route, "?") {
						sep = "&"
					}
					b.open(set.base + "#/" + route + sep + "range=24h")
					name := fmt.Sprintf("40-%s-%d-%s", set.name, width, strings.NewReplacer("/", "-", "?", "-", "=", "-", "&", "-").Replace(route))
					b.screenshot(name)
					if w := b.evalInt(`document.documentElement.scrollWidth`); w > int(width) {
						t.Errorf("%s: page is %d px wide", name, w)
					}
					got := b.eval(`JSON.stringify(Array.from(document.querySelectorAll(".chart")).filter(e => e.uplot).map(e => [e.getAttribute("data-chart"), e.uplot.scales.x.min, e.uplot.scales.x.max]))`)
					var spans [][3]any
					must(t, json.Unmarshal([]byte(got), &spans))
					if set.name == "seeded" && (route == "probes" || route == "flows" || route == "firewall") && len(spans) == 0 {
						t.Errorf("%s: no time chart on seeded data", name)
					}
					for _, sp := range spans {
						min, _ := sp[1].(float64)
						max, _ := sp[2].(float64)
						if d := max - min; sp[0] != "budget" && (d < 24*3600-120 || d > 24*3600+120) {
							t.Errorf("%s: chart %v spans %.0f s; want the 24 h selected", name, sp[0], d)
						}
					}
					if set.name == "empty" && len(spans) > 0 {
						t.Errorf("%s: %d charts drawn on an empty database", name, len(spans))
					}
					// Every empty state says what it is and what to do next.
					bare := b.eval(`Array.from(document.querySelectorAll("#view .empty")).filter(e => !e.querySelector("b") || !e.querySelector("div") || e.querySelector("div").textContent.trim() === "").map(e => e.textContent).join(" | ")`)
					if bare != "" {
						t.Errorf("%s: empty states without a next step: %s", name, bare)
					}
				}
			}
		}
		b.do(chromedp.EmulateViewport(1280, 900))
	})
	b.t = t

	if errs := b.errors(); len(errs) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
	}
	// No secret in any page: the admin password never reaches the browser.
	if strings.Contains(b.eval(`document.documentElement.outerHTML`), s.adminP) {
		t.Error("the admin password appears in a page")
	}
}

func (b *browser) evalIntAwait(js string) int {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[int](js, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("eval %s: %v", js, err)
	}
	return v
}

func secretFromFile(p string) config.Secret { return config.Secret{File: p} }
