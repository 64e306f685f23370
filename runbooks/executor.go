// Package runbooks runs guarded, automated remediation: runbook specs
// triggered by alerts, an executor with guardrails (dry-run, approval,
// cooldown, concurrency, rate limit, blast radius, idempotency, pause),
// actions (RFC 2136 DNS with TSIG, an embedded GoBGP speaker, signed
// webhooks) and an audit log in ClickHouse.
package runbooks

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
)

// Deps of the executor.
type Deps struct {
	Log      *slog.Logger
	Registry prometheus.Registerer
	// ClickHouse returns the store's connection (nil while not connected);
	// nil keeps the audit log in memory only.
	ClickHouse func() driver.Conn
	// Status is the SLO evaluator's view (verification, healthy peers,
	// blast radius).
	Status StatusSource
	// Escalate receives the alerts of failed runs.
	Escalate EscalateFunc
}

// Run states.
const (
	StatePending          = "pending"
	StateBlocked          = "blocked"
	StateAwaitingApproval = "awaiting_approval"
	StateRunning          = "running"
	StateVerifying        = "verifying"
	StateSucceeded        = "succeeded"
	StateRolledBack       = "rolled_back"
	StateRollbackFailed   = "rollback_failed"
	StateExpired          = "expired"
	StateCancelled        = "cancelled"
	StateRestored         = "restored"
	StateDryRun           = "dry_run_complete"
)

// StepResult is what happened to a step of a run.
type StepResult struct {
	Name   string `json:"name"`
	Kind   string `json:"kind"`
	Call   string `json:"call"`
	State  string `json:"state"` // pending, planned, done, failed, undone, undo_failed, skipped
	Detail string `json:"detail,omitempty"`
}

// Run is one execution of a runbook.
type Run struct {
	ID              string            `json:"id"`
	Runbook         string            `json:"runbook"`
	Group           string            `json:"group"`
	SLO             string            `json:"slo"`
	Fingerprint     string            `json:"fingerprint,omitempty"`
	Origin          string            `json:"origin"` // alert or manual
	RequestedBy     string            `json:"requested_by"`
	DryRun          bool              `json:"dry_run"`
	State           string            `json:"state"`
	Reason          string            `json:"reason,omitempty"`
	Labels          map[string]string `json:"labels"`
	Params          map[string]string `json:"params,omitempty"`
	Steps           []StepResult      `json:"steps"`
	ApprovedBy      string            `json:"approved_by,omitempty"`
	ApprovalExpires *time.Time        `json:"approval_expires,omitempty"`
	CreatedAt       time.Time         `json:"created_at"`
	UpdatedAt       time.Time         `json:"updated_at"`
	Audit           []AuditRecord     `json:"audit,omitempty"`

	rb             *Runbook
	plan           *Plan
	firedAt        time.Time
	decide         chan decision
	cancel         context.CancelFunc
	applied        []int // indexes of steps applied, in order
	restorePending bool
	holdsSlot      bool
	restoreStarted bool
	resolved       bool // the triggering alert resolved while the run was executing
}

type decision struct {
	approve bool
	user    string
}

func (r *Run) active() bool {
	switch r.State {
	case StateRunning, StateVerifying:
		return true
	case StateSucceeded:
		return r.restorePending
	}
	return false
}

// Executor is the runbooks component.
type Executor struct {
	cfg      Config
	log      *slog.Logger
	m        *metrics
	status   StatusSource
	escalate EscalateFunc
	prov     *providers
	audit    *auditWriter

	mu        sync.Mutex
	runbooks  []*Runbook
	paused    bool
	runs      map[string]*Run
	order     []string
	byKey     map[string]string    // runbook/fingerprint → run id
	lastStart map[string]time.Time // runbook/group → start of the last executed run
	starts    []time.Time          // executed run starts (rate limit)
	executing int
	seq       uint64

	ctx    context.Context
	stop   context.CancelFunc
	wg     sync.WaitGroup
	now    func() time.Time
	onStep func(run *Run, step int) // test hook, called after a step applied
}

// New builds the executor; it does no I/O besides resolving secrets.
func New(cfg Config, deps Deps) (*Executor, error) {
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	log := deps.Log.With("component", "runbooks")
	m, err := newMetrics(deps.Registry)
	if err != nil {
		return nil, err
	}
	prov, err := newProviders(&cfg, log)
	if err != nil {
		return nil, err
	}
	conn := deps.ClickHouse
	if conn == nil {
		conn = func() driver.Conn { return nil }
	}
	e := &Executor{cfg: cfg, log: log, m: m, status: deps.Status, escalate: deps.Escalate, prov: prov,
		paused: cfg.Paused, runs: map[string]*Run{}, byKey: map[string]string{}, lastStart: map[string]time.Time{},
		now: time.Now}
	e.audit = newAuditWriter(conn, cfg.AuditBuffer, log, m)
	e.audit.memoryOnly = deps.ClickHouse == nil
	e.ctx, e.stop = context.WithCancel(context.Background())
	return e, nil
}

// Check loads and validates the configured runbook files (for `serve
// --check` and `meridian runbook check`).
func Check(cfg Config, files ...string) ([]*Runbook, error) {
	if len(files) == 0 {
		files = cfg.Files
	}
	return LoadFiles(&cfg, files...)
}

// Start loads the runbooks, starts the BGP speaker and the audit writer.
func (e *Executor) Start(ctx context.Context) error {
	if len(e.cfg.Files) > 0 {
		rbs, err := LoadFiles(&e.cfg, e.cfg.Files...)
		if err != nil {
			return fmt.Errorf("runbooks: %w", err)
		}
		e.SetRunbooks(rbs)
	}
	if e.prov.bgp != nil {
		if err := e.prov.bgp.Start(ctx); err != nil {
			return err
		}
	}
	e.audit.start()
	return nil
}

// Stop cancels waiting approvals, lets running steps finish their rollback,
// stops the speaker and flushes the audit log.
func (e *Executor) Stop(ctx context.Context) error {
	e.stop()
	done := make(chan struct{})
	go func() { e.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	var errs []error
	if e.prov.bgp != nil {
		if err := e.prov.bgp.Stop(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if err := e.audit.close(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// SetRunbooks replaces the loaded runbooks (tests, reloads).
func (e *Executor) SetRunbooks(rbs []*Runbook) {
	e.mu.Lock()
	e.runbooks = rbs
	e.mu.Unlock()
}

// Runbooks returns the loaded runbooks.
func (e *Executor) Runbooks() []*Runbook {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]*Runbook(nil), e.runbooks...)
}

// Speaker returns the embedded BGP speaker, or nil.
func (e *Executor) Speaker() *Speaker { return e.prov.bgp }

// SetPaused is the global pause switch; paused, every run is blocked.
func (e *Executor) SetPaused(paused bool, user string) {
	e.mu.Lock()
	e.paused = paused
	e.mu.Unlock()
	d := "resumed"
	if paused {
		d = "paused"
	}
	e.record(nil, AuditRecord{Kind: "pause", Decision: d, Actor: user, Detail: "global pause switch"})
}

// Paused reports the global pause switch.
func (e *Executor) Paused() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.paused
}

func newID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// record appends an audit record to the run (if any) and to the writer.
func (e *Executor) record(r *Run, a AuditRecord) {
	e.mu.Lock()
	e.seq++
	a.Seq = e.seq
	if a.Time.IsZero() {
		a.Time = e.now().UTC()
	}
	if a.Actor == "" {
		a.Actor = "meridian"
	}
	if r != nil {
		a.RunID, a.Runbook, a.Group, a.DryRun = r.ID, r.Runbook, r.Group, r.DryRun
		if len(r.Audit) < 500 {
			r.Audit = append(r.Audit, a)
		}
	}
	e.mu.Unlock()
	e.audit.addAudit(a)
	e.log.Info("runbook decision", "run", a.RunID, "runbook", a.Runbook, "group", a.Group, "kind", a.Kind,
		"decision", a.Decision, "actor", a.Actor, "detail", a.Detail, "dry_run", a.DryRun)
}

// setState changes a run's state and writes a runbook_runs row.
func (e *Executor) setState(r *Run, state, reason string) {
	e.mu.Lock()
	e.seq++
	r.State, r.Reason, r.UpdatedAt = state, reason, e.now().UTC()
	labels, _ := json.Marshal(r.Labels)
	params, _ := json.Marshal(r.Params)
	row := runRow{RunID: r.ID, Runbook: r.Runbook, Group: r.Group, SLO: r.SLO, Fingerprint: r.Fingerprint,
		Origin: r.Origin, RequestedBy: r.RequestedBy, State: state, Reason: reason, DryRun: r.DryRun,
		Labels: string(labels), Params: string(params), CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, Version: e.seq}
	e.mu.Unlock()
	e.audit.addRun(row)
	switch state {
	case StateBlocked, StateSucceeded, StateRolledBack, StateRollbackFailed, StateExpired, StateCancelled, StateRestored, StateDryRun:
		e.m.runs.WithLabelValues(r.Runbook, state).Inc()
	}
}

// HandleAlert is the alert hook: a firing alert starts every runbook whose
// trigger matches (once per alert fingerprint); a resolved alert restores the
// runs it started that ask for it and cancels runs still awaiting approval.
// It returns at once; runs proceed in the background.
func (e *Executor) HandleAlert(a Alert) {
	if a.Fingerprint == "" {
		a.Fingerprint = fingerprint(a.Labels)
	}
	switch a.Status {
	case StatusResolved:
		e.m.alerts.WithLabelValues("resolved").Inc()
		e.resolve(a)
		return
	case StatusFiring, "":
	default:
		e.m.alerts.WithLabelValues("invalid").Inc()
		e.m.rejected.WithLabelValues("alert_status").Inc()
		e.log.Warn("alert with an unknown status ignored", "status", a.Status, "fingerprint", a.Fingerprint)
		return
	}
	fired := e.now()
	e.mu.Lock()
	if e.ctx.Err() != nil {
		e.mu.Unlock()
		return
	}
	var started []*Run
	matched := false
	for _, rb := range e.runbooks {
		if !rb.Matches(a.Labels) {
			continue
		}
		matched = true
		key := rb.Name + "/" + a.Fingerprint
		if _, dup := e.byKey[key]; dup {
			e.m.alerts.WithLabelValues("duplicate").Inc()
			continue
		}
		r := e.newRunLocked(rb, a.Labels, "alert", "alertmanager", false)
		r.Fingerprint, r.firedAt = a.Fingerprint, fired
		e.byKey[key] = r.ID
		started = append(started, r)
	}
	e.mu.Unlock()
	if !matched {
		e.m.alerts.WithLabelValues("unmatched").Inc()
	}
	for _, r := range started {
		e.m.alerts.WithLabelValues("matched").Inc()
		e.launch(r)
	}
}

func fingerprint(labels map[string]string) string {
	var b strings.Builder
	for _, k := range sortedKeys(labels) {
		b.WriteString(k + "\x00" + labels[k] + "\x00")
	}
	return b.String()
}

func (e *Executor) newRunLocked(rb *Runbook, labels map[string]string, origin, user string, dry bool) *Run {
	now := e.now().UTC()
	r := &Run{ID: newID(), Runbook: rb.Name, Group: labels[rb.GroupLabel], SLO: labels[rb.SLOLabel], Origin: origin,
		RequestedBy: user, DryRun: dry || rb.DryRun || e.cfg.DryRun, State: StatePending, Labels: labels,
		CreatedAt: now, UpdatedAt: now, rb: rb, decide: make(chan decision, 1)}
	e.runs[r.ID] = r
	e.order = append(e.order, r.ID)
	e.pruneLocked()
	return r
}

// pruneLocked forgets the oldest finished runs beyond KeepRuns.
func (e *Executor) pruneLocked() {
	for len(e.order) > e.cfg.KeepRuns {
		dropped := false
		for i, id := range e.order {
			r := e.runs[id]
			if r.active() || r.State == StatePending || r.State == StateAwaitingApproval {
				continue
			}
			delete(e.runs, id)
			if r.Fingerprint != "" && e.byKey[r.Runbook+"/"+r.Fingerprint] == id {
				delete(e.byKey, r.Runbook+"/"+r.Fingerprint)
			}
			e.order = append(e.order[:i], e.order[i+1:]...)
			dropped = true
			break
		}
		if !dropped {
			return
		}
	}
}

// Start a manual run. Errors are bad input (unknown runbook, labels that do
// not fit); guardrail blocks are a run in state blocked.
func (e *Executor) RunManual(name string, labels map[string]string, dryRun bool, user string) (Run, error) {
	e.mu.Lock()
	var rb *Runbook
	for _, x := range e.runbooks {
		if x.Name == name {
			rb = x
		}
	}
	if rb == nil {
		e.mu.Unlock()
		return Run{}, fmt.Errorf("no runbook named %q", name)
	}
	if labels[rb.GroupLabel] == "" {
		e.mu.Unlock()
		e.m.rejected.WithLabelValues("labels").Inc()
		return Run{}, fmt.Errorf("labels must include the group label %q", rb.GroupLabel)
	}
	r := e.newRunLocked(rb, labels, "manual", user, dryRun)
	r.firedAt = e.now()
	snap := r.snapshotLocked(false)
	e.mu.Unlock()
	e.launch(r)
	return snap, nil
}

func (e *Executor) launch(r *Run) {
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		e.execute(r)
	}()
}

func (e *Executor) block(r *Run, guardrail, reason string) {
	e.m.blocks.WithLabelValues(guardrail).Inc()
	e.record(r, AuditRecord{Kind: "guardrail", Decision: "blocked", Detail: guardrail + ": " + reason})
	e.setState(r, StateBlocked, guardrail+": "+reason)
}

// execute takes a run from trigger to its end.
func (e *Executor) execute(r *Run) {
	rb := r.rb
	how := "alert " + r.Fingerprint
	if r.Origin == "manual" {
		how = "manual request by " + r.RequestedBy
	}
	e.record(r, AuditRecord{Kind: "trigger", Decision: "started", Actor: r.RequestedBy,
		Detail: fmt.Sprintf("%s; labels %s", how, labelString(r.Labels))})
	plan, err := rb.plan(e.ctx, r.Labels, e.status, e.prov, r.ID)
	if err != nil {
		e.m.rejected.WithLabelValues("plan").Inc()
		e.block(r, "plan", err.Error())
		return
	}
	e.mu.Lock()
	r.plan, r.Params = plan, plan.Params
	for _, s := range plan.Steps {
		r.Steps = append(r.Steps, StepResult{Name: s.Name, Kind: s.Kind, Call: s.Call, State: "pending"})
	}
	e.mu.Unlock()
	if g, why := e.guardrails(r, false); g != "" {
		e.block(r, g, why)
		return
	}
	if rb.Approval.Required && !r.DryRun {
		if !e.awaitApproval(r) {
			return
		}
	}
	if r.DryRun {
		e.dryRun(r)
		return
	}
	if g, why := e.guardrails(r, true); g != "" {
		e.block(r, g, why)
		return
	}
	e.record(r, AuditRecord{Kind: "guardrail", Decision: "allowed", Detail: "every guardrail passed"})
	defer e.release(r)
	ctx, cancel := context.WithCancel(e.ctx)
	e.mu.Lock()
	r.cancel = cancel
	e.mu.Unlock()
	defer cancel()
	e.setState(r, StateRunning, "")
	for i, a := range plan.actions {
		e.record(r, AuditRecord{Kind: "action", Decision: "request", Detail: r.Steps[i].Name + ": " + a.Describe()})
		detail, err := a.Apply(ctx)
		if err != nil {
			e.m.actions.WithLabelValues(a.Kind(), "apply", "failed").Inc()
			e.stepState(r, i, "failed", err.Error())
			e.record(r, AuditRecord{Kind: "action", Decision: "failed", Detail: r.Steps[i].Name + ": " + err.Error()})
			e.fail(r, fmt.Sprintf("step %s failed: %v", r.Steps[i].Name, err))
			return
		}
		e.m.actions.WithLabelValues(a.Kind(), "apply", "ok").Inc()
		e.mu.Lock()
		r.applied = append(r.applied, i)
		e.mu.Unlock()
		if i == 0 && !r.firedAt.IsZero() && !rb.Approval.Required {
			e.m.firstAction.Observe(e.now().Sub(r.firedAt).Seconds())
		}
		e.stepState(r, i, "done", detail)
		e.record(r, AuditRecord{Kind: "action", Decision: "ok", Detail: r.Steps[i].Name + ": " + detail})
		if ctx.Err() != nil { // cancelled (or stopping) while the step ran
			e.fail(r, "run cancelled after step "+r.Steps[i].Name)
			return
		}
		e.mu.Lock()
		hook := e.onStep
		e.mu.Unlock()
		if hook != nil {
			hook(r, i)
		}
	}
	if v := rb.Verify; v != nil {
		e.setState(r, StateVerifying, "")
		if ok, why := e.verify(ctx, r, v); !ok {
			e.record(r, AuditRecord{Kind: "verify", Decision: "failed", Detail: why})
			e.fail(r, "verification failed: "+why)
			return
		}
	}
	e.mu.Lock()
	r.restorePending = rb.RestoreOnResolve
	resolved := r.resolved && rb.RestoreOnResolve && !r.restoreStarted
	r.restoreStarted = r.restoreStarted || resolved
	e.mu.Unlock()
	e.setState(r, StateSucceeded, "")
	if resolved {
		e.restore(r)
	}
}

// release frees the run's concurrency slot.
func (e *Executor) release(r *Run) {
	e.mu.Lock()
	if r.holdsSlot {
		r.holdsSlot = false
		e.executing--
	}
	e.mu.Unlock()
}

func (e *Executor) stepState(r *Run, i int, state, detail string) {
	e.mu.Lock()
	r.Steps[i].State, r.Steps[i].Detail = state, detail
	e.mu.Unlock()
}

func labelString(l map[string]string) string {
	parts := make([]string, 0, len(l))
	for _, k := range sortedKeys(l) {
		parts = append(parts, fmt.Sprintf("%s=%q", k, l[k]))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// guardrails checks pause, cooldown, rate limit, concurrency, blast radius and
// traffic safety. With reserve, a passing run takes its slots atomically.
// It returns the blocking guardrail and why, or "".
func (e *Executor) guardrails(r *Run, reserve bool) (string, string) {
	rb := r.rb
	// Traffic safety needs the status source; ask before taking the lock.
	var trafficWhy string
	if p := r.plan; p.TrafficTo != "" || p.TrafficFrom != "" {
		trafficWhy = e.trafficCheck(r)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	if e.paused {
		return "pause", "runbooks are paused globally"
	}
	if trafficWhy != "" {
		return "blast_radius", trafficWhy
	}
	if r.DryRun {
		return "", "" // a dry run takes no slot and changes nothing
	}
	cd := rb.Cooldown
	if cd == 0 {
		cd = e.cfg.DefaultCooldown
	}
	key := rb.Name + "/" + r.Group
	if last, ok := e.lastStart[key]; ok && now.Sub(last) < cd {
		return "cooldown", fmt.Sprintf("runbook %s acted on group %q at %s; cooldown %s until %s",
			rb.Name, r.Group, last.UTC().Format(time.RFC3339), cd, last.Add(cd).UTC().Format(time.RFC3339))
	}
	n := 0
	for _, t := range e.starts {
		if now.Sub(t) < e.cfg.RateLimitWindow {
			n++
		}
	}
	if n >= e.cfg.RateLimitRuns {
		return "rate_limit", fmt.Sprintf("%d runs started in the last %s (limit %d)", n, e.cfg.RateLimitWindow, e.cfg.RateLimitRuns)
	}
	if e.executing >= e.cfg.MaxConcurrent {
		return "concurrency", fmt.Sprintf("%d runs executing (limit %d)", e.executing, e.cfg.MaxConcurrent)
	}
	groups := map[string]bool{}
	for _, o := range e.runs {
		if o != r && o.active() && !o.DryRun {
			groups[o.Group] = true
		}
	}
	if !groups[r.Group] && len(groups) >= e.cfg.BlastRadius {
		return "blast_radius", fmt.Sprintf("already acting on %d group(s) %v (limit %d)", len(groups), sortedKeys(groups), e.cfg.BlastRadius)
	}
	if reserve {
		kept := e.starts[:0]
		for _, t := range e.starts {
			if now.Sub(t) < e.cfg.RateLimitWindow {
				kept = append(kept, t)
			}
		}
		e.starts = append(kept, now)
		e.lastStart[key] = now
		e.executing++
		r.holdsSlot = true
		r.State = StateRunning // counts for blast radius from now on
	}
	return "", ""
}

// trafficCheck: never move traffic to a group that is burning (or has no
// data), and never drain the last healthy group.
func (e *Executor) trafficCheck(r *Run) string {
	p := r.plan
	if e.status == nil {
		return "no SLO status source to check the other regions against"
	}
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	if p.TrafficTo != "" {
		burning, known, err := e.status.GroupStatus(ctx, p.SLO, p.TrafficTo)
		switch {
		case err != nil:
			return fmt.Sprintf("cannot read the status of target region %q: %v", p.TrafficTo, err)
		case !known:
			return fmt.Sprintf("target region %q has no SLO data; refusing to move traffic there", p.TrafficTo)
		case burning:
			return fmt.Sprintf("target region %q is itself burning its error budget; refusing to move traffic there", p.TrafficTo)
		}
	}
	if p.TrafficFrom != "" {
		healthy, skipped, err := healthyPeers(ctx, e.status, p.SLO, p.TrafficFrom)
		if err != nil {
			return err.Error()
		}
		// Groups already drained by other active runs do not count.
		e.mu.Lock()
		drained := map[string]bool{}
		for _, o := range e.runs {
			if o != r && o.active() && !o.DryRun && o.plan != nil && o.plan.TrafficFrom != "" {
				drained[o.plan.TrafficFrom] = true
			}
		}
		e.mu.Unlock()
		var left []string
		for _, g := range healthy {
			if drained[g] {
				skipped = append(skipped, g+" (drained by another run)")
				continue
			}
			left = append(left, g)
		}
		if len(left) == 0 {
			return fmt.Sprintf("draining %q would leave no healthy region (others: %s); never drain the last healthy region",
				p.TrafficFrom, strings.Join(skipped, ", "))
		}
	}
	return ""
}

// awaitApproval blocks until an operator approves (true) or cancels, the
// approval expires, or the executor stops.
func (e *Executor) awaitApproval(r *Run) bool {
	t := r.rb.Approval.Timeout
	if t == 0 {
		t = e.cfg.ApprovalTimeout
	}
	exp := e.now().Add(t).UTC()
	e.mu.Lock()
	r.ApprovalExpires = &exp
	e.mu.Unlock()
	e.record(r, AuditRecord{Kind: "approval", Decision: "requested", Detail: "waiting for an operator until " + exp.Format(time.RFC3339)})
	e.setState(r, StateAwaitingApproval, "")
	timer := time.NewTimer(t)
	defer timer.Stop()
	select {
	case d := <-r.decide:
		if d.approve {
			e.mu.Lock()
			r.ApprovedBy = d.user
			e.mu.Unlock()
			e.record(r, AuditRecord{Kind: "approval", Decision: "approved", Actor: d.user})
			return true
		}
		e.record(r, AuditRecord{Kind: "approval", Decision: "cancelled", Actor: d.user})
		e.setState(r, StateCancelled, "cancelled by "+d.user)
	case <-timer.C:
		e.record(r, AuditRecord{Kind: "approval", Decision: "expired", Detail: "no operator approved within " + t.String()})
		e.raise(r, "approval expired after "+t.String())
		e.setState(r, StateExpired, "approval expired after "+t.String())
	case <-e.ctx.Done():
		e.record(r, AuditRecord{Kind: "approval", Decision: "cancelled", Detail: "Meridian stopped"})
		e.setState(r, StateCancelled, "Meridian stopped while awaiting approval")
	}
	return false
}

// ErrNotFound and ErrConflict are returned by Approve and Cancel.
var (
	ErrNotFound = errors.New("no such run")
	ErrConflict = errors.New("the run is not in a state that allows this")
)

// Approve approves a run awaiting approval.
func (e *Executor) Approve(id, user string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.runs[id]
	if r == nil {
		return ErrNotFound
	}
	if r.State != StateAwaitingApproval {
		return fmt.Errorf("%w: run %s is %s", ErrConflict, id, r.State)
	}
	select {
	case r.decide <- decision{approve: true, user: user}:
		return nil
	default:
		return fmt.Errorf("%w: a decision on run %s is already pending", ErrConflict, id)
	}
}

// Cancel cancels a run awaiting approval, or stops a running one (its
// applied steps are undone).
func (e *Executor) Cancel(id, user string) error {
	e.mu.Lock()
	r := e.runs[id]
	if r == nil {
		e.mu.Unlock()
		return ErrNotFound
	}
	switch r.State {
	case StateAwaitingApproval, StatePending:
		select {
		case r.decide <- decision{user: user}:
		default:
		}
		e.mu.Unlock()
		return nil
	case StateRunning, StateVerifying:
		c := r.cancel
		e.mu.Unlock()
		e.record(r, AuditRecord{Kind: "cancel", Decision: "requested", Actor: user, Detail: "stopping the run and undoing its steps"})
		if c != nil {
			c()
		}
		return nil
	}
	e.mu.Unlock()
	return fmt.Errorf("%w: run %s is %s", ErrConflict, id, r.State)
}

func (e *Executor) dryRun(r *Run) {
	e.record(r, AuditRecord{Kind: "guardrail", Decision: "allowed", Detail: "dry run: guardrails passed; nothing will change"})
	for i, a := range r.plan.actions {
		e.record(r, AuditRecord{Kind: "action", Decision: "planned", Detail: r.Steps[i].Name + ": " + a.Describe() + " (undo: " + r.rb.Steps[i].Undo + ")"})
		e.stepState(r, i, "planned", a.Describe())
	}
	if v := r.rb.Verify; v != nil {
		e.record(r, AuditRecord{Kind: "verify", Decision: "planned", Detail: fmt.Sprintf("would wait %s, then check that SLO %q stopped burning in %q", v.Wait, r.SLO, r.Group)})
	}
	e.setState(r, StateDryRun, "")
}

// verify waits, then checks up to Checks times that the group stopped
// burning.
func (e *Executor) verify(ctx context.Context, r *Run, v *Verify) (bool, string) {
	if e.status == nil {
		return false, "no SLO status source to verify with"
	}
	checks := max(v.Checks, 1)
	wait := v.Wait
	why := ""
	for i := 0; i < checks; i++ {
		select {
		case <-ctx.Done():
			return false, "run cancelled or Meridian stopping"
		case <-time.After(wait):
		}
		wait = v.Interval
		burning, known, err := e.status.GroupStatus(ctx, r.SLO, r.Group)
		switch {
		case err != nil:
			why = fmt.Sprintf("status of %q: %v", r.Group, err)
		case !known:
			why = fmt.Sprintf("no SLO data for %q", r.Group)
		case burning:
			why = fmt.Sprintf("SLO %q still burning in %q", r.SLO, r.Group)
		default:
			e.record(r, AuditRecord{Kind: "verify", Decision: "ok", Detail: fmt.Sprintf("SLO %q stopped burning in %q (check %d)", r.SLO, r.Group, i+1)})
			return true, ""
		}
		e.record(r, AuditRecord{Kind: "verify", Decision: "not_yet", Detail: fmt.Sprintf("check %d/%d: %s", i+1, checks, why)})
	}
	return false, why
}

// fail undoes the applied steps in reverse order and escalates.
func (e *Executor) fail(r *Run, why string) {
	ok := e.undoAll(r, "rollback")
	// Escalate before the final state, so that whoever waits for the state
	// sees the escalation too.
	if ok {
		e.raise(r, why)
		e.setState(r, StateRolledBack, why)
	} else {
		e.raise(r, why+"; rollback incomplete")
		e.setState(r, StateRollbackFailed, why+"; rollback incomplete")
	}
}

// undoAll runs the undo of every applied step, newest first. Undo uses its
// own context: a cancelled run must still be rolled back.
func (e *Executor) undoAll(r *Run, phase string) bool {
	e.mu.Lock()
	applied := append([]int(nil), r.applied...)
	r.applied = nil
	e.mu.Unlock()
	ok := true
	for j := len(applied) - 1; j >= 0; j-- {
		i := applied[j]
		a := r.plan.actions[i]
		name := r.Steps[i].Name
		if r.rb.Steps[i].Undo == "none" {
			e.record(r, AuditRecord{Kind: "undo", Decision: "skipped", Detail: name + ": undo: none"})
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		detail, err := a.Undo(ctx)
		cancel()
		if err != nil {
			ok = false
			e.m.actions.WithLabelValues(a.Kind(), "undo", "failed").Inc()
			e.stepState(r, i, "undo_failed", err.Error())
			e.record(r, AuditRecord{Kind: "undo", Decision: "failed", Detail: phase + ": " + name + ": " + err.Error()})
			continue
		}
		e.m.actions.WithLabelValues(a.Kind(), "undo", "ok").Inc()
		e.stepState(r, i, "undone", detail)
		e.record(r, AuditRecord{Kind: "undo", Decision: "ok", Detail: phase + ": " + name + ": " + detail})
	}
	return ok
}

// raise escalates with an alert of the runbooks' own.
func (e *Executor) raise(r *Run, why string) {
	if r.rb.Escalate != nil && r.rb.Escalate.Disabled {
		return
	}
	labels := map[string]string{"alertname": "MeridianRunbookFailed", "runbook": r.Runbook, "severity": "page"}
	if r.Group != "" {
		labels[r.rb.GroupLabel] = r.Group
	}
	if r.rb.Escalate != nil {
		for k, v := range r.rb.Escalate.Labels {
			labels[k] = v
		}
	}
	a := Alert{Labels: labels, Annotations: map[string]string{"summary": "runbook " + r.Runbook + " failed", "description": why, "run_id": r.ID},
		Status: StatusFiring, StartsAt: e.now().UTC(), Fingerprint: "runbook/" + r.ID}
	e.record(r, AuditRecord{Kind: "escalate", Decision: "raised", Detail: labelString(labels) + ": " + why})
	if e.escalate != nil {
		e.escalate(a)
	}
}

// resolve handles a resolved alert.
func (e *Executor) resolve(a Alert) {
	e.mu.Lock()
	var restore, cancel []*Run
	for _, r := range e.runs {
		if r.Fingerprint != a.Fingerprint || r.Origin != "alert" {
			continue
		}
		switch {
		case r.State == StateSucceeded && r.restorePending && !r.restoreStarted:
			r.restoreStarted = true
			restore = append(restore, r)
		case r.State == StateAwaitingApproval:
			cancel = append(cancel, r)
		case r.State == StateRunning || r.State == StateVerifying || r.State == StatePending:
			r.resolved = true // restored when the run ends
		}
	}
	e.mu.Unlock()
	for _, r := range cancel {
		select {
		case r.decide <- decision{user: "alert resolved"}:
		default:
		}
	}
	for _, r := range restore {
		e.wg.Add(1)
		go func(r *Run) {
			defer e.wg.Done()
			e.restore(r)
		}(r)
	}
}

// restore undoes a succeeded run's steps because its alert resolved.
func (e *Executor) restore(r *Run) {
	e.record(r, AuditRecord{Kind: "restore", Decision: "started", Detail: "the triggering alert resolved"})
	ok := e.undoAll(r, "restore")
	e.mu.Lock()
	r.restorePending = false
	e.mu.Unlock()
	if ok {
		e.setState(r, StateRestored, "alert resolved")
	} else {
		e.raise(r, "restore after resolve failed")
		e.setState(r, StateRollbackFailed, "restore incomplete")
	}
}

// snapshotLocked copies a run for the API.
func (r *Run) snapshotLocked(withAudit bool) Run {
	c := *r
	c.Labels = copyMap(r.Labels)
	c.Params = copyMap(r.Params)
	c.Steps = append([]StepResult(nil), r.Steps...)
	if withAudit {
		c.Audit = append([]AuditRecord(nil), r.Audit...)
	} else {
		c.Audit = nil
	}
	c.decide, c.cancel, c.applied, c.plan, c.rb = nil, nil, nil, nil, nil
	return c
}

func copyMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// Runs lists runs, newest first.
func (e *Executor) Runs() []Run {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Run, 0, len(e.order))
	for i := len(e.order) - 1; i >= 0; i-- {
		out = append(out, e.runs[e.order[i]].snapshotLocked(false))
	}
	return out
}

// GetRun returns a run with its steps and audit records.
func (e *Executor) GetRun(id string) (Run, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r, ok := e.runs[id]
	if !ok {
		return Run{}, false
	}
	return r.snapshotLocked(true), true
}

// WaitRun waits until the run reaches one of states (tests, CLI).
func (e *Executor) WaitRun(ctx context.Context, id string, states ...string) (Run, error) {
	for {
		r, ok := e.GetRun(id)
		if !ok {
			return Run{}, ErrNotFound
		}
		for _, s := range states {
			if r.State == s {
				return r, nil
			}
		}
		select {
		case <-ctx.Done():
			return r, fmt.Errorf("run %s is %s (%s), waited for %v: %w", id, r.State, r.Reason, states, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// RunForAlert returns the id of the run an alert started for a runbook.
func (e *Executor) RunForAlert(runbook, fingerprint string) (string, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	id, ok := e.byKey[runbook+"/"+fingerprint]
	return id, ok
}
