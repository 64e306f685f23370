package gameday

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/meridian-obs/meridian/alerting"
	"github.com/meridian-obs/meridian/internal/gameday/timeline"
	"github.com/meridian-obs/meridian/runbooks"
)

// Event kinds of a drill's timeline.
const (
	EvFaultInjected = "fault_injected"
	EvAlertFiring   = "alert_firing"
	EvAlertResolved = "alert_resolved"
	EvRunStarted    = "runbook_run"
	EvAction        = "runbook_action"
	EvFaultRemoved  = "fault_removed"
	EvRestoreDone   = "restore_done"
	EvOtherRegion   = "other_region"
	EvAborted       = "aborted"
	EvNote          = "note"
)

// Outcomes of a drill.
const (
	OutcomeRecovered   = "recovered"    // detected, acted (if a runbook matched), resolved and restored
	OutcomeNoAlert     = "not_detected" // no alert fired while the fault was held
	OutcomeNotResolved = "not_resolved" // the alert or the restore did not finish in time
	OutcomeAborted     = "aborted"      // stopped (Ctrl-C); the fault was removed
)

// Event is one entry of the incident timeline.
type Event = timeline.Event

// Result is a finished drill.
type Result = timeline.Result

// AlertSource is the alerting component (Subscribe is called once).
type AlertSource interface {
	Subscribe(alerting.Subscriber)
}

// RunSource is the runbook executor.
type RunSource interface {
	Runs() []runbooks.Run
	GetRun(id string) (runbooks.Run, bool)
	Runbooks() []*runbooks.Runbook
}

// Runner runs drills against a network and a running Meridian.
type Runner struct {
	Net  *Network
	Runs RunSource
	Conn func() driver.Conn // nil: the timeline is not stored
	Log  *slog.Logger
	// ConfigDryRun is runbooks.dry_run of the server configuration.
	ConfigDryRun bool

	mu     sync.Mutex
	cur    *drillState
	active bool
}

// NewRunner subscribes to alerts and returns the runner.
func NewRunner(n *Network, alerts AlertSource, runs RunSource, conn func() driver.Conn, configDryRun bool, log *slog.Logger) *Runner {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	r := &Runner{Net: n, Runs: runs, Conn: conn, ConfigDryRun: configDryRun, Log: log.With("component", "gameday")}
	alerts.Subscribe(r.onAlert)
	return r
}

type drillState struct {
	mu     sync.Mutex
	start  time.Time
	region string
	events []Event
	// per region: alert fingerprints firing now
	firing   map[string]map[string]string // region → fingerprint → severity
	paged    map[string]bool
	firstFir map[string]time.Time
	resolved time.Time
}

func (r *Runner) onAlert(a alerting.Alert) {
	r.mu.Lock()
	d := r.cur
	r.mu.Unlock()
	if d == nil || a.Labels["slo"] != SLOName {
		return
	}
	now := time.Now()
	region := a.Labels["region"]
	detail := fmt.Sprintf("%s %s/%s severity=%s", a.Labels["alertname"], a.Labels["long_window"], a.Labels["short_window"], a.Labels["severity"])
	if s := a.Annotations["summary"]; s != "" {
		detail += ": " + s
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.firing[region] == nil {
		d.firing[region] = map[string]string{}
	}
	if a.Firing() {
		if _, ok := d.firing[region][a.Fingerprint]; ok {
			return
		}
		d.firing[region][a.Fingerprint] = a.Labels["severity"]
		if a.Labels["severity"] == "page" {
			d.paged[region] = true
		}
		if _, ok := d.firstFir[region]; !ok {
			d.firstFir[region] = now
		}
		d.add(now, region, EvAlertFiring, detail)
		return
	}
	if _, ok := d.firing[region][a.Fingerprint]; !ok {
		return
	}
	delete(d.firing[region], a.Fingerprint)
	d.add(now, region, EvAlertResolved, detail)
	if d.pendingLocked(region) == 0 && region == d.region {
		d.resolved = now
	}
}

// pendingLocked counts the region's alerts a recovery waits for: its page
// alerts when one paged (ticket alerts of a slow budget burn may rightly
// stay), else every alert.
func (d *drillState) pendingLocked(region string) int {
	n := 0
	for _, sev := range d.firing[region] {
		if !d.paged[region] || sev == "page" {
			n++
		}
	}
	return n
}

func (d *drillState) add(at time.Time, region, kind, detail string) {
	d.events = append(d.events, Event{At: at, Offset: at.Sub(d.start).Seconds(), Region: region, Kind: kind, Detail: detail})
}

// Drill describes one drill.
type Drill struct {
	Region string
	Fault  Fault
	// Hold is how long the fault stays. 0: until the first runbook action
	// (plus HoldAfterAct), or the first alert when no runbook matches, at
	// most MaxHold.
	Hold         time.Duration
	HoldAfterAct time.Duration
	MaxHold      time.Duration
	// RecoverTimeout bounds the wait for resolution and restore after the
	// fault is removed (default 15m).
	RecoverTimeout time.Duration
	// Settle: after a fault that raised no alert, watch this long for a late
	// one (default 30s).
	Settle time.Duration
	// AllowLive lets the drill run although the region's runbooks act for
	// real.
	AllowLive bool
	// Progress, when set, receives each timeline event as it happens.
	Progress func(Event)
}

// ErrLive is returned when a region's runbooks are live and AllowLive is not
// set.
var ErrLive = errors.New("runbooks are not in dry-run")

// LiveRunbooks lists the runbooks that a page of the SLO in region would
// start and that would act for real.
func (r *Runner) LiveRunbooks(region string) []string {
	if r.ConfigDryRun {
		return nil
	}
	probe := map[string]string{"alertname": alerting.AlertName, "slo": SLOName, "region": region, "severity": "page",
		"long_window": "1h", "short_window": "5m"}
	var live []string
	for _, rb := range r.Runs.Runbooks() {
		if rb.Matches(probe) && !rb.DryRun {
			live = append(live, rb.Name)
		}
	}
	sort.Strings(live)
	return live
}

// Run runs one drill. Whatever happens (ctx cancelled included) the fault
// is removed before Run returns; the result is stored when a connection is
// set.
func (r *Runner) Run(ctx context.Context, dr Drill) (*Result, error) {
	reg := r.Net.Region(dr.Region)
	if reg == nil {
		return nil, fmt.Errorf("no region %q (regions: %s)", dr.Region, strings.Join(RegionNames, ", "))
	}
	if dr.Fault.Healthy() {
		return nil, errors.New("no fault to inject")
	}
	if live := r.LiveRunbooks(dr.Region); len(live) > 0 && !dr.AllowLive {
		return nil, fmt.Errorf("%w for region %s: %s would change DNS/BGP for real; run them in dry-run or pass --allow-live",
			ErrLive, dr.Region, strings.Join(live, ", "))
	}
	if dr.MaxHold == 0 {
		dr.MaxHold = 3 * time.Minute
	}
	if dr.HoldAfterAct == 0 {
		dr.HoldAfterAct = 5 * time.Second
	}
	if dr.RecoverTimeout == 0 {
		dr.RecoverTimeout = 15 * time.Minute
	}
	if dr.Settle == 0 {
		dr.Settle = 30 * time.Second
	}
	r.mu.Lock()
	if r.active {
		r.mu.Unlock()
		return nil, errors.New("a drill is already running")
	}
	r.active = true
	r.mu.Unlock()
	defer func() { r.mu.Lock(); r.active, r.cur = false, nil; r.mu.Unlock() }()

	before, err := r.Net.Snapshot(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the network before the drill: %w", err)
	}
	knownRuns := map[string]bool{}
	for _, run := range r.Runs.Runs() {
		knownRuns[run.ID] = true
	}
	id := newID()
	res := &Result{ID: id, Region: dr.Region, Fault: dr.Fault.String(), DryRun: len(r.LiveRunbooks(dr.Region)) == 0}
	d := &drillState{region: dr.Region, firing: map[string]map[string]string{}, paged: map[string]bool{}, firstFir: map[string]time.Time{}}

	// Inject.
	d.start = time.Now()
	r.mu.Lock()
	r.cur = d
	r.mu.Unlock()
	reg.SetFault(dr.Fault)
	faultOn := true
	removeFault := func() {
		if faultOn {
			reg.SetFault(Fault{})
			faultOn = false
		}
	}
	defer removeFault() // whatever happens, the network is left as it was
	res.Start = d.start
	d.mu.Lock()
	d.add(d.start, dr.Region, EvFaultInjected, dr.Fault.String())
	d.mu.Unlock()
	r.Log.Info("fault injected", "drill", id, "region", dr.Region, "fault", dr.Fault.String())

	w := &watcher{r: r, d: d, known: knownRuns, seen: map[string]int{}, progress: dr.Progress}
	var removed time.Time
	aborted := false
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()

	// Hold the fault.
hold:
	for {
		select {
		case <-ctx.Done():
			aborted = true
			break hold
		case <-tick.C:
		}
		w.poll()
		el := time.Since(d.start)
		switch {
		case dr.Hold > 0:
			if el >= dr.Hold {
				break hold
			}
		case !w.firstAction.IsZero():
			if time.Since(w.firstAction) >= dr.HoldAfterAct {
				break hold
			}
		case w.matchedRun == "" && w.firstAlert(dr.Region) && el > 10*time.Second+durationSince(d, dr.Region):
			// Alert fired and no runbook started within 10 s of it.
			break hold
		case w.matchedEnded:
			// The run ended without acting (blocked by a guardrail, …).
			break hold
		}
		if el >= dr.MaxHold {
			break hold
		}
	}
	removeFault()
	removed = time.Now()
	d.mu.Lock()
	d.add(removed, dr.Region, EvFaultRemoved, fmt.Sprintf("after %.1fs", removed.Sub(d.start).Seconds()))
	d.mu.Unlock()
	w.poll()
	r.Log.Info("fault removed", "drill", id, "region", dr.Region)

	// Recover.
	deadline := removed.Add(dr.RecoverTimeout)
	if !w.firstAlert(dr.Region) {
		deadline = removed.Add(dr.Settle)
	}
	for !aborted {
		if w.recovered(dr.Region) && time.Since(removed) > 2*time.Second {
			break
		}
		if time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			aborted = true
		case <-tick.C:
		}
		w.poll()
	}
	res.End = time.Now()
	res.FaultHeld = removed.Sub(d.start).Seconds()

	d.mu.Lock()
	if t, ok := d.firstFir[dr.Region]; ok {
		res.Detect = secs(t.Sub(d.start))
	}
	if !w.firstAction.IsZero() {
		res.Act = secs(w.firstAction.Sub(d.start))
	}
	if !w.restored.IsZero() {
		res.Restore = secs(w.restored.Sub(removed))
	}
	if !d.resolved.IsZero() && d.resolved.After(removed) {
		end := d.resolved
		if w.acted && w.restored.After(end) {
			end = w.restored
		}
		if !w.acted || !w.restored.IsZero() {
			res.Recover = secs(end.Sub(removed))
		}
	}
	for reg := range d.firstFir {
		if reg != dr.Region {
			res.OtherRegionsChanged = true
		}
	}
	d.mu.Unlock()
	if w.otherRuns > 0 {
		res.OtherRegionsChanged = true
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if after, err := r.Net.Snapshot(sctx); err == nil {
		for _, diff := range before.Diff(after) {
			other := !strings.HasSuffix(strings.SplitN(diff, ":", 2)[0], "/"+dr.Region)
			if other {
				res.OtherRegionsChanged = true
				w.event(time.Now(), "", EvOtherRegion, "changed and not restored: "+diff)
			} else if !aborted {
				w.event(time.Now(), dr.Region, EvNote, "not restored at the end of the drill: "+diff)
			}
		}
	}
	switch {
	case aborted:
		res.Outcome = OutcomeAborted
		w.event(time.Now(), dr.Region, EvAborted, "drill stopped; fault removed")
	case res.Detect == nil:
		res.Outcome = OutcomeNoAlert
	case res.Recover == nil:
		res.Outcome = OutcomeNotResolved
	default:
		res.Outcome = OutcomeRecovered
	}
	d.mu.Lock()
	res.Events = append([]Event(nil), d.events...)
	d.mu.Unlock()
	sort.SliceStable(res.Events, func(i, j int) bool { return res.Events[i].At.Before(res.Events[j].At) })
	if r.Conn != nil {
		if conn := r.Conn(); conn != nil {
			if err := timeline.Store(sctx, conn, res); err != nil {
				return res, fmt.Errorf("storing the drill's timeline: %w", err)
			}
		}
	}
	if aborted {
		return res, ctx.Err()
	}
	return res, nil
}

func durationSince(d *drillState, region string) time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	if t, ok := d.firstFir[region]; ok {
		return t.Sub(d.start)
	}
	return 0
}

func secs(d time.Duration) *float64 { v := d.Seconds(); return &v }

func newID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return time.Now().UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b)
}

// watcher follows runbook runs started during a drill.
type watcher struct {
	r           *Runner
	d           *drillState
	known       map[string]bool
	seen        map[string]int // run id → audit records already turned into events
	progress    func(Event)
	printed     int
	matchedRun  string
	firstAction time.Time
	restored    time.Time
	acted       bool
	otherRuns   int
	restoreWait map[string]bool
	// matchedEnded: the drill region's run ended without an action.
	matchedEnded bool
}

func (w *watcher) event(at time.Time, region, kind, detail string) {
	w.d.mu.Lock()
	w.d.add(at, region, kind, detail)
	w.d.mu.Unlock()
	w.flush()
}

func (w *watcher) flush() {
	if w.progress == nil {
		return
	}
	w.d.mu.Lock()
	evs := append([]Event(nil), w.d.events[w.printed:]...)
	w.printed = len(w.d.events)
	w.d.mu.Unlock()
	for _, e := range evs {
		w.progress(e)
	}
}

func (w *watcher) firstAlert(region string) bool {
	w.d.mu.Lock()
	defer w.d.mu.Unlock()
	_, ok := w.d.firstFir[region]
	return ok
}

// recovered: the region's alerts resolved and, if a run acted, it restored.
func (w *watcher) recovered(region string) bool {
	w.d.mu.Lock()
	resolved := !w.d.resolved.IsZero() && w.d.pendingLocked(region) == 0
	w.d.mu.Unlock()
	if !resolved {
		return false
	}
	return !w.acted || !w.restored.IsZero() || w.matchedRun == ""
}

func (w *watcher) poll() {
	defer w.flush()
	if w.restoreWait == nil {
		w.restoreWait = map[string]bool{}
	}
	for _, sum := range w.r.Runs.Runs() {
		if w.known[sum.ID] {
			continue
		}
		run, ok := w.r.Runs.GetRun(sum.ID)
		if !ok {
			continue
		}
		if _, seen := w.seen[run.ID]; !seen {
			w.seen[run.ID] = 0
			if run.Group != w.d.region {
				w.otherRuns++
			} else if w.matchedRun == "" {
				w.matchedRun = run.ID
			}
			w.event(run.CreatedAt, run.Group, EvRunStarted, fmt.Sprintf("%s run %s (%s, dry_run=%t)", run.Runbook, run.ID, run.Origin, run.DryRun))
		}
		for _, a := range run.Audit[w.seen[run.ID]:] {
			switch {
			case a.Kind == "action" && (a.Decision == "ok" || a.Decision == "planned"):
				if run.Group == w.d.region && w.firstAction.IsZero() {
					w.firstAction = a.Time
				}
				if a.Decision == "ok" && run.Group == w.d.region {
					w.acted = true
				}
				w.event(a.Time, run.Group, EvAction, a.Decision+": "+a.Detail)
			case a.Kind == "action" && a.Decision == "failed",
				a.Kind == "guardrail" && a.Decision == "blocked",
				a.Kind == "restore", a.Kind == "undo", a.Kind == "verify", a.Kind == "escalate":
				w.event(a.Time, run.Group, EvNote, a.Kind+" "+a.Decision+": "+a.Detail)
			}
		}
		w.seen[run.ID] = len(run.Audit)
		if run.ID == w.matchedRun && w.firstAction.IsZero() {
			switch run.State {
			case runbooks.StateBlocked, runbooks.StateExpired, runbooks.StateCancelled, runbooks.StateRolledBack, runbooks.StateRollbackFailed:
				w.matchedEnded = true
			}
		}
		if run.State == runbooks.StateRestored && run.Group == w.d.region && w.restored.IsZero() {
			w.restored = run.UpdatedAt
			w.event(run.UpdatedAt, run.Group, EvRestoreDone, fmt.Sprintf("run %s restored: %s", run.ID, run.Reason))
		}
	}
}
