package runbooks

import (
	"errors"
	"net/http"
	"strings"

	"github.com/meridian-obs/meridian/internal/httpx"
)

// IdentityFunc tells who makes a request and with which role (viewer,
// operator or admin); the web server's authentication fills it.
type IdentityFunc func(r *http.Request) (user string, role string)

// RunbookInfo is a runbook as listed by the API (no secrets: the actions
// name configured servers and endpoints, never their keys).
type RunbookInfo struct {
	Name             string        `json:"name"`
	Description      string        `json:"description,omitempty"`
	File             string        `json:"file"`
	Trigger          string        `json:"trigger"`
	GroupLabel       string        `json:"group_label"`
	ApprovalRequired bool          `json:"approval_required"`
	DryRun           bool          `json:"dry_run"`
	Cooldown         string        `json:"cooldown"`
	RestoreOnResolve bool          `json:"restore_on_resolve"`
	Steps            []StepSummary `json:"steps"`
}

// StepSummary names a step's action.
type StepSummary struct {
	Name   string `json:"name"`
	Action string `json:"action"`
	Target string `json:"target"`
	Op     string `json:"op,omitempty"`
}

// Handler serves the runbooks API. Mount it on /api/v1/runbooks and
// /api/v1/runbooks/ (it routes the rest itself).
func (e *Executor) Handler(identity IdentityFunc) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/runbooks", e.apiList)
	mux.HandleFunc("GET /api/v1/runbooks/runs", e.apiRuns)
	mux.HandleFunc("GET /api/v1/runbooks/runs/{id}", e.apiRun)
	mux.HandleFunc("POST /api/v1/runbooks/{name}/run", func(w http.ResponseWriter, r *http.Request) { e.apiStart(w, r, identity) })
	mux.HandleFunc("POST /api/v1/runbooks/runs/{id}/approve", func(w http.ResponseWriter, r *http.Request) { e.apiDecide(w, r, identity, true) })
	mux.HandleFunc("POST /api/v1/runbooks/runs/{id}/cancel", func(w http.ResponseWriter, r *http.Request) { e.apiDecide(w, r, identity, false) })
	mux.HandleFunc("GET /api/v1/runbooks/pause", e.apiPauseGet)
	mux.HandleFunc("POST /api/v1/runbooks/pause", func(w http.ResponseWriter, r *http.Request) { e.apiPause(w, r, identity) })
	return mux
}

func (e *Executor) apiList(w http.ResponseWriter, _ *http.Request) {
	rbs := e.Runbooks()
	out := make([]RunbookInfo, 0, len(rbs))
	for _, rb := range rbs {
		cd := rb.Cooldown
		if cd == 0 {
			cd = e.cfg.DefaultCooldown
		}
		info := RunbookInfo{Name: rb.Name, Description: rb.Description, File: rb.File, Trigger: rb.Trigger.Match,
			GroupLabel: rb.GroupLabel, ApprovalRequired: rb.Approval.Required, DryRun: rb.DryRun || e.cfg.DryRun,
			Cooldown: cd.String(), RestoreOnResolve: rb.RestoreOnResolve}
		for _, s := range rb.Steps {
			ss := StepSummary{Name: s.Name}
			switch {
			case s.DNS != nil:
				ss.Action, ss.Target, ss.Op = "dns", s.DNS.Server, s.DNS.Op
			case s.BGP != nil:
				ss.Action, ss.Target, ss.Op = "bgp", "speaker", s.BGP.Op
			case s.Webhook != nil:
				ss.Action, ss.Target = "webhook", s.Webhook.Endpoint
			}
			info.Steps = append(info.Steps, ss)
		}
		out = append(out, info)
	}
	httpx.JSON(w, http.StatusOK, map[string]any{"runbooks": out, "paused": e.Paused()})
}

func (e *Executor) apiRuns(w http.ResponseWriter, r *http.Request) {
	runs := e.Runs()
	q := r.URL.Query()
	out := runs[:0]
	for _, x := range runs {
		if (q.Get("runbook") == "" || x.Runbook == q.Get("runbook")) && (q.Get("state") == "" || x.State == q.Get("state")) {
			out = append(out, x)
		}
	}
	httpx.JSON(w, http.StatusOK, map[string]any{"runs": out})
}

func (e *Executor) apiRun(w http.ResponseWriter, r *http.Request) {
	run, ok := e.GetRun(r.PathValue("id"))
	if !ok {
		httpx.NotFound(w, "no run %q", r.PathValue("id"))
		return
	}
	httpx.JSON(w, http.StatusOK, run)
}

func canOperate(role string) bool { return role == "operator" || role == "admin" }

func who(identity IdentityFunc, r *http.Request) (string, string) {
	if identity == nil {
		return "", ""
	}
	return identity(r)
}

// StartRequest is the body of POST /api/v1/runbooks/{name}/run.
type StartRequest struct {
	Labels map[string]string `json:"labels"`
	DryRun bool              `json:"dry_run"`
}

func (e *Executor) apiStart(w http.ResponseWriter, r *http.Request, identity IdentityFunc) {
	user, role := who(identity, r)
	if !canOperate(role) {
		httpx.Error(w, http.StatusForbidden, "forbidden", "starting a runbook needs the operator or admin role")
		return
	}
	var req StartRequest
	if !httpx.DecodeJSON(w, r, 64<<10, &req) {
		e.m.rejected.WithLabelValues("api_body").Inc()
		return
	}
	for k, v := range req.Labels {
		if !labelNameRe.MatchString(k) || len(v) > 1024 {
			e.m.rejected.WithLabelValues("api_body").Inc()
			httpx.BadRequest(w, "invalid label %q", k)
			return
		}
	}
	run, err := e.RunManual(r.PathValue("name"), req.Labels, req.DryRun, user)
	if err != nil {
		if strings.HasPrefix(err.Error(), "no runbook") {
			httpx.NotFound(w, "%v", err)
			return
		}
		httpx.BadRequest(w, "%v", err)
		return
	}
	httpx.JSON(w, http.StatusAccepted, run)
}

func (e *Executor) apiDecide(w http.ResponseWriter, r *http.Request, identity IdentityFunc, approve bool) {
	user, role := who(identity, r)
	if !canOperate(role) {
		httpx.Error(w, http.StatusForbidden, "forbidden", "approving or cancelling a run needs the operator or admin role")
		return
	}
	id := r.PathValue("id")
	var err error
	if approve {
		err = e.Approve(id, user)
	} else {
		err = e.Cancel(id, user)
	}
	switch {
	case errors.Is(err, ErrNotFound):
		httpx.NotFound(w, "no run %q", id)
	case errors.Is(err, ErrConflict):
		httpx.Error(w, http.StatusConflict, "conflict", "%v", err)
	case err != nil:
		httpx.Internal(w)
	default:
		run, _ := e.GetRun(id)
		httpx.JSON(w, http.StatusAccepted, run)
	}
}

func (e *Executor) apiPauseGet(w http.ResponseWriter, _ *http.Request) {
	httpx.JSON(w, http.StatusOK, map[string]bool{"paused": e.Paused()})
}

// PauseRequest is the body of POST /api/v1/runbooks/pause.
type PauseRequest struct {
	Paused bool `json:"paused"`
}

func (e *Executor) apiPause(w http.ResponseWriter, r *http.Request, identity IdentityFunc) {
	user, role := who(identity, r)
	if role != "admin" {
		httpx.Error(w, http.StatusForbidden, "forbidden", "the global pause switch needs the admin role")
		return
	}
	var req PauseRequest
	if !httpx.DecodeJSON(w, r, 4<<10, &req) {
		e.m.rejected.WithLabelValues("api_body").Inc()
		return
	}
	e.SetPaused(req.Paused, user)
	httpx.JSON(w, http.StatusOK, map[string]bool{"paused": e.Paused()})
}
