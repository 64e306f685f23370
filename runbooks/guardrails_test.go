package runbooks

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

const hookRunbook = `
runbooks:
  - name: edge-notify
    trigger:
      match: 'slo=edge-latency, severity=page, region=~".+"'
    params:
      region: '{{ .Labels.region }}'
      peer: '{{ healthyPeer }}'
    traffic:
      from: '{{ .Params.region }}'
      to: '{{ .Params.peer }}'
    %s
    steps:
      - name: tell-ops
        webhook:
          endpoint: ops
          event: traffic.move
          data:
            from: '{{ .Params.region }}'
            to: '{{ .Params.peer }}'
`

func hookYAML(extra string) string {
	return strings.Replace(hookRunbook, "%s", extra, 1)
}

func labels(region string) map[string]string {
	return map[string]string{"alertname": "SLOBurn", "slo": "edge-latency", "severity": "page", "region": region}
}

func TestWebhookRunSignedAndReplayRejected(t *testing.T) {
	rc := newReceiver(t)
	rc.failNext = 2 // two 503s: the sender retries with the same id
	f := newFixture(t, webhookConfig(t, rc), newStatus([]string{"eu", "us"}, "eu"), hookYAML(""))
	id := f.fire(t, "edge-notify", "fp1", labels("eu"))
	run := f.wait(t, id, StateSucceeded)
	evs := rc.got()
	if len(evs) != 1 {
		t.Fatalf("receiver accepted %d events, want 1", len(evs))
	}
	if ev := evs[0]; ev.Type != "traffic.move" || ev.Phase != "apply" || ev.Data["from"] != "eu" || ev.Data["to"] != "us" || ev.RunID != id {
		t.Errorf("event = %+v", ev)
	}
	if !hasAudit(run, "action", "ok", "after 3 attempt(s)") {
		t.Errorf("audit does not show the retries:%s", auditText(run))
	}
	// Replay the accepted request byte for byte: the receiver refuses it.
	rc.mu.Lock()
	req, body := rc.raw[0], rc.bodies[0]
	rc.mu.Unlock()
	replay, _ := http.NewRequest(http.MethodPost, rc.srv.URL+"/hook", bytes.NewReader(body))
	for _, h := range []string{"webhook-id", "webhook-timestamp", "webhook-signature", "Content-Type"} {
		replay.Header.Set(h, req.Header.Get(h))
	}
	resp, err := http.DefaultClient.Do(replay)
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict || rc.rejected["replay"] != 1 {
		t.Errorf("replay: HTTP %d, rejections %v; want 409 and one replay rejection", resp.StatusCode, rc.rejected)
	}
	// A tampered body fails the signature.
	tampered, _ := http.NewRequest(http.MethodPost, rc.srv.URL+"/hook", bytes.NewReader(bytes.Replace(body, []byte(`"us"`), []byte(`"ap"`), 1)))
	for _, h := range []string{"webhook-id", "webhook-timestamp", "webhook-signature"} {
		tampered.Header.Set(h, req.Header.Get(h))
	}
	tampered.Header.Set("webhook-id", "msg_other")
	resp, err = http.DefaultClient.Do(tampered)
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("tampered: HTTP %d, want 401", resp.StatusCode)
	}
	// The secret never shows in the audit or the API.
	js, _ := json.Marshal(run)
	if bytes.Contains(js, []byte(rc.secret[6:])) || strings.Contains(auditText(run), rc.secret[6:]) {
		t.Error("the webhook secret leaked into the run or its audit")
	}
}

func TestWebhookAllowlist(t *testing.T) {
	rc := newReceiver(t)
	cfg := webhookConfig(t, rc)
	cfg.Webhook.Allow = []string{"127.0.0.1:1"}
	err := validateConfig(cfg)
	if err == nil || !strings.Contains(err.Error(), "webhook.endpoints.ops.url") || !strings.Contains(err.Error(), "not in webhook.allow") {
		t.Fatalf("validate = %v, want an allowlist error on webhook.endpoints.ops.url", err)
	}
	// Even if it got past validation, the sender refuses to send.
	ep, err := newWebhookEndpoint("ops", cfg.Webhook.Endpoints["ops"], cfg.Webhook)
	must(t, err)
	if _, err := ep.send(t.Context(), "msg_x", []byte("{}")); err == nil || !strings.Contains(err.Error(), "not in webhook.allow") {
		t.Errorf("send = %v, want an allowlist error", err)
	}
	if len(rc.got()) != 0 {
		t.Error("a request reached a destination outside the allowlist")
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	rc := newReceiver(t)
	f := newFixture(t, webhookConfig(t, rc), newStatus([]string{"eu", "us"}, "eu"), hookYAML("dry_run: true"))
	id := f.fire(t, "edge-notify", "fp1", labels("eu"))
	run := f.wait(t, id, StateDryRun)
	if len(rc.got()) != 0 {
		t.Fatalf("dry run sent %d webhooks", len(rc.got()))
	}
	if !hasAudit(run, "action", "planned", "webhook ops: POST a signed traffic.move event") {
		t.Errorf("dry run did not record the call it would make:%s", auditText(run))
	}
	if run.Steps[0].State != "planned" {
		t.Errorf("step state %q, want planned", run.Steps[0].State)
	}
}

func TestIdempotentPerAlert(t *testing.T) {
	rc := newReceiver(t)
	f := newFixture(t, webhookConfig(t, rc), newStatus([]string{"eu", "us"}, "eu"), hookYAML(""))
	id := f.fire(t, "edge-notify", "fp1", labels("eu"))
	f.wait(t, id, StateSucceeded)
	for i := 0; i < 5; i++ { // Alertmanager re-sends while firing
		f.e.HandleAlert(Alert{Labels: labels("eu"), Status: StatusFiring, Fingerprint: "fp1"})
	}
	if n := len(f.e.Runs()); n != 1 {
		t.Errorf("%d runs, want 1", n)
	}
	if got := counter(t, f.e.m.alerts.WithLabelValues("duplicate")); got != 5 {
		t.Errorf("duplicates counted %v, want 5", got)
	}
	if len(rc.got()) != 1 {
		t.Errorf("%d webhooks, want 1", len(rc.got()))
	}
}

func TestCooldownBlocks(t *testing.T) {
	rc := newReceiver(t)
	f := newFixture(t, webhookConfig(t, rc), newStatus([]string{"eu", "us"}, "eu"), hookYAML("cooldown: 1h"))
	f.wait(t, f.fire(t, "edge-notify", "fp1", labels("eu")), StateSucceeded)
	run := f.wait(t, f.fire(t, "edge-notify", "fp2", labels("eu")), StateBlocked)
	if !strings.HasPrefix(run.Reason, "cooldown: runbook edge-notify acted on group \"eu\"") {
		t.Errorf("reason %q", run.Reason)
	}
	if !hasAudit(run, "guardrail", "blocked", "cooldown") {
		t.Errorf("block not audited:%s", auditText(run))
	}
	if len(rc.got()) != 1 {
		t.Errorf("%d webhooks, want 1", len(rc.got()))
	}
	if got := counter(t, f.e.m.blocks.WithLabelValues("cooldown")); got != 1 {
		t.Errorf("cooldown blocks %v", got)
	}
}

func TestBlastRadiusBlocks(t *testing.T) {
	rc := newReceiver(t)
	cfg := webhookConfig(t, rc)
	cfg.BlastRadius = 1
	st := newStatus([]string{"eu", "us", "ap"}, "eu", "ap")
	f := newFixture(t, cfg, st, hookYAML("restore_on_resolve: true"))
	f.wait(t, f.fire(t, "edge-notify", "fp-eu", labels("eu")), StateSucceeded)
	run := f.wait(t, f.fire(t, "edge-notify", "fp-ap", labels("ap")), StateBlocked)
	if !strings.Contains(run.Reason, "blast_radius: already acting on 1 group(s) [eu] (limit 1)") {
		t.Errorf("reason %q", run.Reason)
	}
	// When the first alert resolves, its run is restored and frees the slot.
	f.e.HandleAlert(Alert{Labels: labels("eu"), Status: StatusResolved, Fingerprint: "fp-eu"})
	id, _ := f.e.RunForAlert("edge-notify", "fp-eu")
	f.wait(t, id, StateRestored)
	if evs := rc.got(); len(evs) != 2 || evs[1].Phase != "undo" {
		t.Errorf("events %+v, want apply then undo", evs)
	}
	f.wait(t, f.fire(t, "edge-notify", "fp-ap2", labels("ap")), StateSucceeded)
}

func TestNeverMoveTrafficToBurningOrDrainLastHealthy(t *testing.T) {
	rc := newReceiver(t)
	t.Run("target burning", func(t *testing.T) {
		yaml := strings.Replace(hookYAML(""), "peer: '{{ healthyPeer }}'", "peer: '{{ .Labels.target }}'", 1)
		f := newFixture(t, webhookConfig(t, rc), newStatus([]string{"eu", "us"}, "eu", "us"), yaml)
		l := labels("eu")
		l["target"] = "us"
		run := f.wait(t, f.fire(t, "edge-notify", "fp1", l), StateBlocked)
		if !strings.Contains(run.Reason, `target region "us" is itself burning`) {
			t.Errorf("reason %q", run.Reason)
		}
	})
	t.Run("no healthy peer", func(t *testing.T) {
		f := newFixture(t, webhookConfig(t, rc), newStatus([]string{"eu", "us", "ap"}, "eu", "us", "ap"), hookYAML(""))
		run := f.wait(t, f.fire(t, "edge-notify", "fp1", labels("eu")), StateBlocked)
		if !strings.Contains(run.Reason, `no healthy region other than "eu"`) || !strings.Contains(run.Reason, "us (burning)") {
			t.Errorf("reason %q", run.Reason)
		}
	})
	t.Run("last healthy drained by another run", func(t *testing.T) {
		cfg := webhookConfig(t, rc)
		cfg.BlastRadius = 3
		yaml := strings.Replace(hookYAML("restore_on_resolve: true"), "peer: '{{ healthyPeer }}'", "peer: '{{ .Labels.target }}'", 1)
		f := newFixture(t, cfg, newStatus([]string{"eu", "us", "ap"}), yaml)
		a := labels("eu")
		a["target"] = "us"
		f.wait(t, f.fire(t, "edge-notify", "fp1", a), StateSucceeded) // eu drained to us
		b := labels("us")
		b["target"] = "ap"
		f.wait(t, f.fire(t, "edge-notify", "fp2", b), StateSucceeded) // us drained to ap
		c := labels("ap")
		c["target"] = "us"
		run := f.wait(t, f.fire(t, "edge-notify", "fp3", c), StateBlocked)
		if !strings.Contains(run.Reason, "never drain the last healthy region") {
			t.Errorf("reason %q", run.Reason)
		}
	})
	if len(rc.got()) != 2 {
		t.Errorf("%d webhooks, want 2 (only the allowed drains)", len(rc.got()))
	}
}

func TestApprovalWaitsThenRuns(t *testing.T) {
	rc := newReceiver(t)
	f := newFixture(t, webhookConfig(t, rc), newStatus([]string{"eu", "us"}, "eu"), hookYAML("approval: {required: true, timeout: 1m}"))
	id := f.fire(t, "edge-notify", "fp1", labels("eu"))
	run := f.wait(t, id, StateAwaitingApproval)
	time.Sleep(200 * time.Millisecond)
	if len(rc.got()) != 0 {
		t.Fatal("the run acted before approval")
	}
	if run.ApprovalExpires == nil {
		t.Error("no approval expiry")
	}
	h := f.e.Handler(func(r *http.Request) (string, string) { return r.Header.Get("X-User"), r.Header.Get("X-Role") })
	post := func(path, user, role string) int {
		req := httptest.NewRequest(http.MethodPost, path, nil)
		req.Header.Set("X-User", user)
		req.Header.Set("X-Role", role)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w.Code
	}
	if c := post("/api/v1/runbooks/runs/"+id+"/approve", "viewer-vic", "viewer"); c != http.StatusForbidden {
		t.Errorf("viewer approve: HTTP %d, want 403", c)
	}
	if c := post("/api/v1/runbooks/runs/"+id+"/approve", "alice", "operator"); c != http.StatusAccepted {
		t.Fatalf("approve: HTTP %d", c)
	}
	run = f.wait(t, id, StateSucceeded)
	if run.ApprovedBy != "alice" || !hasAudit(run, "approval", "approved", "") {
		t.Errorf("approval not recorded: approved_by %q%s", run.ApprovedBy, auditText(run))
	}
	if len(rc.got()) != 1 {
		t.Errorf("%d webhooks after approval, want 1", len(rc.got()))
	}
	if c := post("/api/v1/runbooks/runs/"+id+"/approve", "alice", "operator"); c != http.StatusConflict {
		t.Errorf("second approve: HTTP %d, want 409", c)
	}
}

func TestApprovalExpiresAndCancel(t *testing.T) {
	rc := newReceiver(t)
	f := newFixture(t, webhookConfig(t, rc), newStatus([]string{"eu", "us", "ap"}, "eu", "ap"), hookYAML("approval: {required: true, timeout: 300ms}"))
	id := f.fire(t, "edge-notify", "fp1", labels("eu"))
	run := f.wait(t, id, StateExpired)
	if !hasAudit(run, "approval", "expired", "") {
		t.Errorf("expiry not audited:%s", auditText(run))
	}
	if esc := f.escalations(); len(esc) != 1 || esc[0].Labels["runbook"] != "edge-notify" {
		t.Errorf("escalations %+v", esc)
	}
	id2 := f.fire(t, "edge-notify", "fp2", labels("ap"))
	f.wait(t, id2, StateAwaitingApproval)
	must(t, f.e.Cancel(id2, "bob"))
	run = f.wait(t, id2, StateCancelled)
	if run.Reason != "cancelled by bob" {
		t.Errorf("reason %q", run.Reason)
	}
	if len(rc.got()) != 0 {
		t.Error("an unapproved run acted")
	}
}

func TestPauseRateLimitConcurrency(t *testing.T) {
	rc := newReceiver(t)
	t.Run("pause", func(t *testing.T) {
		f := newFixture(t, webhookConfig(t, rc), newStatus([]string{"eu", "us"}, "eu"), hookYAML(""))
		f.e.SetPaused(true, "admin")
		run := f.wait(t, f.fire(t, "edge-notify", "fp1", labels("eu")), StateBlocked)
		if run.Reason != "pause: runbooks are paused globally" {
			t.Errorf("reason %q", run.Reason)
		}
	})
	t.Run("rate limit", func(t *testing.T) {
		cfg := webhookConfig(t, rc)
		cfg.RateLimitRuns, cfg.RateLimitWindow, cfg.BlastRadius = 1, time.Hour, 5
		f := newFixture(t, cfg, newStatus([]string{"eu", "us", "ap"}, "eu", "ap"), hookYAML(""))
		f.wait(t, f.fire(t, "edge-notify", "fp1", labels("eu")), StateSucceeded)
		run := f.wait(t, f.fire(t, "edge-notify", "fp2", labels("ap")), StateBlocked)
		if !strings.HasPrefix(run.Reason, "rate_limit: 1 runs started in the last 1h0m0s (limit 1)") {
			t.Errorf("reason %q", run.Reason)
		}
	})
	t.Run("concurrency", func(t *testing.T) {
		cfg := webhookConfig(t, rc)
		cfg.MaxConcurrent, cfg.BlastRadius = 1, 5
		f := newFixture(t, cfg, newStatus([]string{"eu", "us", "ap"}, "eu", "ap"), hookYAML(""))
		hold := make(chan struct{})
		rc.mu.Lock()
		rc.hold = hold
		rc.mu.Unlock()
		id1 := f.fire(t, "edge-notify", "fp1", labels("eu"))
		f.wait(t, id1, StateRunning)
		run := f.wait(t, f.fire(t, "edge-notify", "fp2", labels("ap")), StateBlocked)
		rc.mu.Lock()
		rc.hold = nil
		rc.mu.Unlock()
		close(hold)
		f.wait(t, id1, StateSucceeded)
		if !strings.HasPrefix(run.Reason, "concurrency: 1 runs executing (limit 1)") {
			t.Errorf("reason %q", run.Reason)
		}
	})
}

func TestVerifyFailsUndoesAndEscalates(t *testing.T) {
	rc := newReceiver(t)
	st := newStatus([]string{"eu", "us"}, "eu")
	f := newFixture(t, webhookConfig(t, rc), st, hookYAML("verify: {wait: 50ms, checks: 2, interval: 50ms}"))
	id := f.fire(t, "edge-notify", "fp1", labels("eu"))
	run := f.wait(t, id, StateRolledBack)
	if !strings.Contains(run.Reason, `verification failed: SLO "edge-latency" still burning in "eu"`) {
		t.Errorf("reason %q", run.Reason)
	}
	evs := rc.got()
	if len(evs) != 2 || evs[0].Phase != "apply" || evs[1].Phase != "undo" {
		t.Errorf("events %+v, want apply then undo", evs)
	}
	esc := f.escalations()
	if len(esc) != 1 || esc[0].Labels["alertname"] != "MeridianRunbookFailed" || esc[0].Labels["region"] != "eu" {
		t.Errorf("escalations %+v", esc)
	}
	// Verification passes once the burn stops.
	st2 := newStatus([]string{"ap", "us"})
	f2 := newFixture(t, webhookConfig(t, rc), st2, hookYAML("verify: {wait: 10ms}"))
	run = f2.wait(t, f2.fire(t, "edge-notify", "fp2", labels("ap")), StateSucceeded)
	if !hasAudit(run, "verify", "ok", "stopped burning") {
		t.Errorf("verify not audited:%s", auditText(run))
	}
}

func TestAPI(t *testing.T) {
	rc := newReceiver(t)
	f := newFixture(t, webhookConfig(t, rc), newStatus([]string{"eu", "us"}, "eu"), hookYAML(""))
	h := f.e.Handler(func(r *http.Request) (string, string) { return "carol", r.Header.Get("X-Role") })
	do := func(method, path, role, body string) (int, map[string]any) {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("X-Role", role)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		var out map[string]any
		b, _ := io.ReadAll(w.Body)
		_ = json.Unmarshal(b, &out)
		return w.Code, out
	}
	code, out := do("GET", "/api/v1/runbooks", "viewer", "")
	if code != 200 || len(out["runbooks"].([]any)) != 1 {
		t.Fatalf("list: %d %v", code, out)
	}
	if code, _ := do("POST", "/api/v1/runbooks/edge-notify/run", "viewer", `{"labels":{"region":"eu","slo":"edge-latency"}}`); code != 403 {
		t.Errorf("viewer run: %d", code)
	}
	if code, _ := do("POST", "/api/v1/runbooks/edge-notify/run", "operator", `{"labels":{"region":"eu"},"bogus":1}`); code != 400 {
		t.Errorf("unknown field: %d", code)
	}
	if code, _ := do("POST", "/api/v1/runbooks/nope/run", "operator", `{"labels":{"region":"eu"}}`); code != 404 {
		t.Errorf("unknown runbook: %d", code)
	}
	code, out = do("POST", "/api/v1/runbooks/edge-notify/run", "operator", `{"labels":{"region":"eu","slo":"edge-latency"},"dry_run":true}`)
	if code != 202 || out["requested_by"] != "carol" || out["dry_run"] != true {
		t.Fatalf("manual run: %d %v", code, out)
	}
	id := out["id"].(string)
	f.wait(t, id, StateDryRun)
	code, out = do("GET", "/api/v1/runbooks/runs/"+id, "viewer", "")
	if code != 200 || len(out["audit"].([]any)) == 0 || len(out["steps"].([]any)) != 1 {
		t.Errorf("run: %d %v", code, out)
	}
	code, out = do("GET", "/api/v1/runbooks/runs", "viewer", "")
	if code != 200 || len(out["runs"].([]any)) != 1 {
		t.Errorf("runs: %d %v", code, out)
	}
	if code, _ := do("POST", "/api/v1/runbooks/pause", "operator", `{"paused":true}`); code != 403 {
		t.Errorf("operator pause: %d", code)
	}
	if code, out := do("POST", "/api/v1/runbooks/pause", "admin", `{"paused":true}`); code != 200 || out["paused"] != true {
		t.Errorf("admin pause: %d %v", code, out)
	}
	if got := counter(t, f.e.m.rejected.WithLabelValues("api_body")); got != 1 {
		t.Errorf("rejected api bodies %v, want 1", got)
	}
}
