package web

import (
	"math"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/meridian-obs/meridian/internal/httpx"
)

const authBodyLimit = 16 << 10

func (s *Server) mountAuth() {
	s.Mount("GET /api/v1/session", Public, http.HandlerFunc(s.session))
	s.Mount("POST /api/v1/session", Public, http.HandlerFunc(s.login))
	s.Mount("DELETE /api/v1/session", Viewer, http.HandlerFunc(s.logout))
	s.Mount("GET /api/v1/me", Viewer, http.HandlerFunc(s.me))
	s.Mount("GET /api/v1/users", Admin, http.HandlerFunc(s.listUsers))
	s.Mount("POST /api/v1/users", Admin, http.HandlerFunc(s.createUser))
	s.Mount("DELETE /api/v1/users/{name}", Admin, http.HandlerFunc(s.deleteUser))
	s.Mount("GET /api/v1/tokens", Admin, http.HandlerFunc(s.listTokens))
	s.Mount("POST /api/v1/tokens", Admin, http.HandlerFunc(s.createToken))
	s.Mount("DELETE /api/v1/tokens/{name}", Admin, http.HandlerFunc(s.deleteToken))
	if s.users != nil && s.deps.Registry != nil {
		if err := s.deps.Registry.Register(s.users.limiter.limited); err != nil {
			s.log.Error("login limiter metric not registered", "err", err)
		}
	}
}

func (s *Server) needUsers(w http.ResponseWriter) bool {
	if s.users == nil {
		httpx.Error(w, http.StatusServiceUnavailable, "unavailable", "no user store: the server runs without a state directory")
		return false
	}
	return true
}

// jsonBody checks that a state-changing body is JSON: a cross-site form
// cannot send that content type without a CORS preflight.
func jsonBody(w http.ResponseWriter, r *http.Request) bool {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/json" {
		httpx.Error(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "expected Content-Type: application/json")
		return false
	}
	return true
}

// sameOrigin rejects browser requests whose Origin is another site (login
// CSRF); requests without Origin (scripts) pass.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}

type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

type meResponse struct {
	Authenticated bool   `json:"authenticated"`
	Name          string `json:"name"`
	Role          Role   `json:"role"`
	Via           string `json:"via"`
	// CSRFToken must be sent as X-CSRF-Token on every state-changing
	// request of the session.
	CSRFToken string `json:"csrf_token,omitempty"`
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if !s.needUsers(w) || !jsonBody(w, r) {
		return
	}
	if !sameOrigin(r) {
		httpx.Error(w, http.StatusForbidden, "forbidden", "cross-origin login refused")
		return
	}
	var req loginRequest
	if !httpx.DecodeJSON(w, r, authBodyLimit, &req) {
		return
	}
	keys := []loginKey{{"client", clientKey(r, s.proxies)}, {"user", req.Username}}
	if wait, kind := s.users.limiter.take(keys...); wait > 0 {
		secs := int(math.Ceil(wait.Seconds()))
		s.log.Warn("login refused: too many failures", "limit", kind, "user", req.Username, "client", clientAddr(r, s.proxies))
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		httpx.Error(w, http.StatusTooManyRequests, "rate_limited",
			"too many failed logins for this %s; retry in %d s", kind, secs)
		return
	}
	p, id, csrf, ok := s.users.Login(req.Username, req.Password)
	if !ok {
		s.log.Info("login failed", "user", req.Username, "client", clientAddr(r, s.proxies))
		httpx.Error(w, http.StatusUnauthorized, "unauthorized", "wrong user name or password")
		return
	}
	s.users.limiter.give(keys...)
	s.log.Info("login", "user", p.Name, "role", p.Role)
	http.SetCookie(w, s.users.Cookie(id, int(s.users.maxAge.Seconds())))
	w.Header().Set("Cache-Control", "no-store")
	httpx.JSON(w, http.StatusOK, meResponse{Authenticated: true, Name: p.Name, Role: p.Role, Via: p.Via, CSRFToken: csrf})
}

// session tells the dashboard whether it is signed in (200 either way, so
// that the login page loads without an error).
func (s *Server) session(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	p, ok, err := s.authenticate(r)
	if err != nil || !ok {
		httpx.JSON(w, http.StatusOK, map[string]any{"authenticated": false})
		return
	}
	resp := meResponse{Name: p.Name, Role: p.Role, Via: p.Via, Authenticated: true}
	if p.Via == "session" && s.users != nil {
		resp.CSRFToken = s.users.CSRF(r)
	}
	httpx.JSON(w, http.StatusOK, resp)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if s.users != nil {
		s.users.Logout(r)
		http.SetCookie(w, s.users.Cookie("", -1))
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) me(w http.ResponseWriter, r *http.Request) {
	p, _ := PrincipalFrom(r.Context())
	resp := meResponse{Authenticated: true, Name: p.Name, Role: p.Role, Via: p.Via}
	if p.Via == "session" && s.users != nil {
		resp.CSRFToken = s.users.CSRF(r)
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.JSON(w, http.StatusOK, resp)
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) {
	if !s.needUsers(w) {
		return
	}
	httpx.JSON(w, http.StatusOK, map[string]any{"users": s.users.List()})
}

type createUserRequest struct {
	Name     string `json:"name"`
	Role     Role   `json:"role"`
	Password string `json:"password"`
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request) {
	if !s.needUsers(w) || !jsonBody(w, r) {
		return
	}
	var req createUserRequest
	if !httpx.DecodeJSON(w, r, authBodyLimit, &req) {
		return
	}
	if err := s.users.Add(req.Name, req.Role, req.Password); err != nil {
		httpx.BadRequest(w, "%v", err)
		return
	}
	who, _ := Identity(r)
	s.log.Info("user created", "user", req.Name, "role", req.Role, "by", who)
	httpx.JSON(w, http.StatusCreated, UserInfo{Name: req.Name, Role: req.Role})
}

func (s *Server) deleteUser(w http.ResponseWriter, r *http.Request) {
	if !s.needUsers(w) {
		return
	}
	ok, err := s.users.Delete(r.PathValue("name"))
	if err != nil {
		s.log.Error("delete user", "err", err)
		httpx.Internal(w)
		return
	}
	if !ok {
		httpx.NotFound(w, "no user %q", r.PathValue("name"))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) {
	if !s.needUsers(w) {
		return
	}
	httpx.JSON(w, http.StatusOK, map[string]any{"tokens": s.users.Tokens()})
}

type createTokenRequest struct {
	Name string `json:"name"`
	Role Role   `json:"role"`
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request) {
	if !s.needUsers(w) || !jsonBody(w, r) {
		return
	}
	var req createTokenRequest
	if !httpx.DecodeJSON(w, r, authBodyLimit, &req) {
		return
	}
	tok, err := s.users.CreateToken(req.Name, req.Role)
	if err != nil {
		httpx.BadRequest(w, "%v", err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	// The token is shown in this response only; the server keeps its hash.
	httpx.JSON(w, http.StatusCreated, map[string]any{"name": req.Name, "role": req.Role, "token": tok})
}

func (s *Server) deleteToken(w http.ResponseWriter, r *http.Request) {
	if !s.needUsers(w) {
		return
	}
	ok, err := s.users.DeleteToken(r.PathValue("name"))
	if err != nil {
		s.log.Error("delete token", "err", err)
		httpx.Internal(w)
		return
	}
	if !ok {
		httpx.NotFound(w, "no token %q", r.PathValue("name"))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
