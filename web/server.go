// Package web is Meridian's HTTP face: the JSON API under /api/v1, the
// health and metrics endpoints, and the dashboard. Components hand it their
// handlers; it adds authentication, limits and consistent errors.
package web

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/meridian-obs/meridian/internal/config"
	"github.com/meridian-obs/meridian/internal/httpx"
)

// Config of the HTTP server.
type Config struct {
	Listen      string `yaml:"listen"`
	TLSCertPath string `yaml:"tls_cert_path"`
	TLSKeyPath  string `yaml:"tls_key_path"`
	// PublicURL is how users reach the dashboard (used in alert links).
	PublicURL string `yaml:"public_url"`
	// MaxBodyBytes bounds request bodies.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// Tokens are static API tokens (for scripts and automation). Tokens
	// created through the API (POST /api/v1/tokens) and dashboard users
	// live in STATE_DIR/web/users.json, hashed.
	Tokens []TokenConfig `yaml:"tokens"`
	// SessionIdleTimeout ends a dashboard session unused for this long;
	// SessionMaxAge ends any session this long after login.
	SessionIdleTimeout time.Duration `yaml:"session_idle_timeout"`
	SessionMaxAge      time.Duration `yaml:"session_max_age"`
	// TrustedProxies are the addresses (CIDR prefixes) of reverse proxies
	// in front of Meridian. A request from one of them is attributed to
	// the last address of X-Forwarded-For that is not itself a trusted
	// proxy (for the login limit and the logs); X-Forwarded-For from any
	// other peer is ignored.
	TrustedProxies []string `yaml:"trusted_proxies"`
}

// TokenConfig is one static API token: its SHA-256 (hex) or the token itself
// from a file or the environment.
type TokenConfig struct {
	Name   string        `yaml:"name"`
	Role   Role          `yaml:"role"`
	SHA256 string        `yaml:"sha256"`
	Token  config.Secret `yaml:"token"`
}

// DefaultConfig listens on loopback.
func DefaultConfig() Config {
	return Config{Listen: "127.0.0.1:8080", MaxBodyBytes: 8 << 20, SessionIdleTimeout: 12 * time.Hour, SessionMaxAge: 7 * 24 * time.Hour}
}

// Validate implements config.Validator.
func (c Config) Validate(r *config.Reporter) {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		r.Errorf("listen", "expected host:port, got %q", c.Listen)
	}
	if (c.TLSCertPath == "") != (c.TLSKeyPath == "") {
		r.Errorf("tls_cert_path", "set both tls_cert_path and tls_key_path, or neither")
	}
	if c.SessionIdleTimeout < time.Minute {
		r.Errorf("session_idle_timeout", "expected at least 1m, got %s", c.SessionIdleTimeout)
	}
	if c.SessionMaxAge < c.SessionIdleTimeout {
		r.Errorf("session_max_age", "expected at least session_idle_timeout (%s), got %s", c.SessionIdleTimeout, c.SessionMaxAge)
	}
	if c.MaxBodyBytes < 1024 {
		r.Errorf("max_body_bytes", "expected at least 1024, got %d", c.MaxBodyBytes)
	}
	for i, p := range c.TrustedProxies {
		if _, err := parsePrefix(p); err != nil {
			r.Index("trusted_proxies", i).Errorf("", "expected an address or CIDR prefix (10.0.0.0/8, ::1), got %q", p)
		}
	}
	for i, t := range c.Tokens {
		tr := r.Index("tokens", i)
		if t.Name == "" {
			tr.Errorf("name", "expected a name")
		}
		if !t.Role.Valid() {
			tr.Errorf("role", "expected viewer, operator or admin, got %q", t.Role)
		}
		if (t.SHA256 == "") == !t.Token.IsSet() {
			tr.Errorf("sha256", "set exactly one of sha256 or token (token_file / token_env)")
		}
		if t.SHA256 != "" {
			if b, err := hex.DecodeString(t.SHA256); err != nil || len(b) != sha256.Size {
				tr.Errorf("sha256", "expected 64 hex digits")
			}
		}
		t.Token.Validate(tr.Sub("token"))
	}
}

// Role of a user or token.
type Role string

// Roles, each including the rights of the ones before.
const (
	RoleViewer   Role = "viewer"
	RoleOperator Role = "operator"
	RoleAdmin    Role = "admin"
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r == RoleViewer || r == RoleOperator || r == RoleAdmin }

func (r Role) rank() int {
	switch r {
	case RoleViewer:
		return 1
	case RoleOperator:
		return 2
	case RoleAdmin:
		return 3
	}
	return 0
}

// Allows reports whether r has at least the rights of need.
func (r Role) Allows(need Role) bool { return r.rank() >= need.rank() && need.rank() > 0 }

// Access says who may call a mounted handler.
type Access int

const (
	// Public handlers need no credentials (health endpoints only).
	Public Access = iota
	// Self handlers authenticate requests themselves (agents, webhooks).
	Self
	// Viewer, Operator and Admin need a session or token of that role.
	Viewer
	Operator
	Admin
)

func (a Access) role() Role {
	switch a {
	case Viewer:
		return RoleViewer
	case Operator:
		return RoleOperator
	case Admin:
		return RoleAdmin
	}
	return ""
}

// Principal is the authenticated caller.
type Principal struct {
	Name string
	Role Role
	// Via is "token" or "session".
	Via string
}

type ctxKey struct{}

// PrincipalFrom returns the caller of an authenticated request.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(ctxKey{}).(Principal)
	return p, ok
}

// Identity returns the caller's name and role ("" when anonymous).
func Identity(r *http.Request) (string, string) {
	p, _ := PrincipalFrom(r.Context())
	return p.Name, string(p.Role)
}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// Authenticator finds the caller of a request. ok is false for anonymous
// requests; an error means the credentials were present but invalid.
type Authenticator interface {
	Authenticate(r *http.Request) (p Principal, ok bool, err error)
}

// Deps of the server.
type Deps struct {
	Log      *slog.Logger
	Registry prometheus.Registerer
	Gatherer prometheus.Gatherer
	// Ready returns nil when the server is ready to serve (ClickHouse
	// answers, migrations done).
	Ready func(ctx context.Context) error
	// Conn gives the ClickHouse connection the data endpoints read (nil
	// before the store is connected). Without it the data endpoints
	// answer 503.
	Conn func() driver.Conn
	// StateDir holds users.json and the first-start admin credentials
	// (under StateDir/web). Empty: no users, only static tokens.
	StateDir string
	// Stdout receives the first-start admin credentials (once).
	Stdout io.Writer
}

// Server is the HTTP component.
type Server struct {
	cfg    Config
	deps   Deps
	log    *slog.Logger
	mux    *http.ServeMux
	srv    *http.Server
	ln     net.Listener
	done   chan error
	tokens []staticToken
	// proxies: cfg.TrustedProxies parsed.
	proxies []netip.Prefix

	rootMounted bool
	routes      []string

	mu    sync.RWMutex
	auths []Authenticator
	users *Users

	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

type staticToken struct {
	name string
	role Role
	sum  [sha256.Size]byte
}

// New builds the server; it does no I/O (tokens from files are read here,
// as configuration).
func New(cfg Config, deps Deps) (*Server, error) {
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	s := &Server{cfg: cfg, deps: deps, log: deps.Log.With("component", "web"), mux: http.NewServeMux()}
	for _, p := range cfg.TrustedProxies {
		pp, err := parsePrefix(p)
		if err != nil {
			return nil, fmt.Errorf("web: trusted_proxies: %q: %w", p, err)
		}
		s.proxies = append(s.proxies, pp)
	}
	for _, t := range cfg.Tokens {
		st := staticToken{name: t.Name, role: t.Role}
		if t.SHA256 != "" {
			b, err := hex.DecodeString(t.SHA256)
			if err != nil || len(b) != sha256.Size {
				return nil, fmt.Errorf("web: token %s: bad sha256", t.Name)
			}
			copy(st.sum[:], b)
		} else {
			v, err := t.Token.Resolve()
			if err != nil {
				return nil, fmt.Errorf("web: token %s: %w", t.Name, err)
			}
			st.sum = sha256.Sum256([]byte(v))
		}
		s.tokens = append(s.tokens, st)
	}
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meridian_web_requests_total",
		Help: "HTTP requests by route and status class."}, []string{"route", "code"})
	s.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "meridian_web_request_duration_seconds",
		Help: "HTTP request latency by route.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"route"})
	if deps.Registry != nil {
		for _, c := range []prometheus.Collector{s.requests, s.latency} {
			if err := deps.Registry.Register(c); err != nil {
				return nil, err
			}
		}
	}
	s.Mount("GET /healthz", Public, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpx.JSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}))
	s.Mount("GET /readyz", Public, http.HandlerFunc(s.readyz))
	if deps.Gatherer != nil {
		s.Mount("GET /metrics", Public, promhttp.HandlerFor(deps.Gatherer, promhttp.HandlerOpts{}))
	}
	if deps.StateDir != "" {
		s.users = NewUsers(filepath.Join(deps.StateDir, "web", "users.json"), cfg.TLSCertPath != "")
		if cfg.SessionIdleTimeout > 0 {
			s.users.idle = cfg.SessionIdleTimeout
		}
		if cfg.SessionMaxAge > 0 {
			s.users.maxAge = cfg.SessionMaxAge
		}
		s.AddAuthenticator(s.users)
	}
	s.mountAuth()
	s.mountData()
	s.mountSLOData()
	s.mountDashboard()
	return s, nil
}

// AddAuthenticator adds a way to authenticate callers (sessions, …), tried
// after the static tokens.
func (s *Server) AddAuthenticator(a Authenticator) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.auths = append(s.auths, a)
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.deps.Ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		if err := s.deps.Ready(ctx); err != nil {
			httpx.Error(w, http.StatusServiceUnavailable, "unavailable", "not ready: %v", err)
			return
		}
	}
	httpx.JSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// Mount registers h for a ServeMux pattern ("GET /api/v1/slos/{name}") with
// an access level.
func (s *Server) Mount(pattern string, access Access, h http.Handler) {
	if pattern == "/" {
		s.rootMounted = true
	}
	s.routes = append(s.routes, pattern)
	s.mux.Handle(pattern, s.wrap(pattern, access, h))
}

// Routes returns the mounted patterns, in mount order.
func (s *Server) Routes() []string { return append([]string(nil), s.routes...) }

// Handler returns the root handler (for tests).
func (s *Server) Handler() http.Handler { return s.mux }

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *Server) wrap(route string, access Access, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ctx, span := otel.Tracer("github.com/meridian-obs/meridian/web").Start(r.Context(), r.Method+" "+route,
			trace.WithSpanKind(trace.SpanKindServer))
		defer span.End()
		r = r.WithContext(ctx)
		sw := &statusWriter{ResponseWriter: w}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		r.Body = http.MaxBytesReader(sw, r.Body, s.cfg.MaxBodyBytes)
		defer func() {
			if v := recover(); v != nil {
				s.log.Error("handler panic", "route", route, "panic", v)
				if sw.code == 0 {
					httpx.Internal(sw)
				}
			}
			code := sw.code
			if code == 0 {
				code = http.StatusOK
			}
			s.requests.WithLabelValues(route, fmt.Sprintf("%dxx", code/100)).Inc()
			s.latency.WithLabelValues(route).Observe(time.Since(start).Seconds())
		}()
		if access >= Viewer {
			p, ok, err := s.authenticate(r)
			switch {
			case errors.Is(err, ErrCSRF):
				httpx.Error(sw, http.StatusForbidden, "csrf", "%v", err)
				return
			case err != nil:
				httpx.Error(sw, http.StatusUnauthorized, "unauthorized", "%v", err)
				return
			case !ok:
				httpx.Error(sw, http.StatusUnauthorized, "unauthorized", "authentication required: a session or an API token (Authorization: Bearer …)")
				return
			case !p.Role.Allows(access.role()):
				httpx.Error(sw, http.StatusForbidden, "forbidden", "role %s may not do this; %s required", p.Role, access.role())
				return
			}
			r = r.WithContext(WithPrincipal(r.Context(), p))
		}
		h.ServeHTTP(sw, r)
	})
}

var errBadToken = errors.New("invalid API token")

func (s *Server) authenticate(r *http.Request) (Principal, bool, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		tok, ok := strings.CutPrefix(h, "Bearer ")
		if !ok {
			return Principal{}, false, errors.New("unsupported Authorization scheme; use Bearer")
		}
		sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
		for _, t := range s.tokens {
			if subtle.ConstantTimeCompare(sum[:], t.sum[:]) == 1 {
				return Principal{Name: t.name, Role: t.role, Via: "token"}, true, nil
			}
		}
		s.mu.RLock()
		auths := s.auths
		s.mu.RUnlock()
		for _, a := range auths {
			if p, ok, err := a.Authenticate(r); ok || err != nil {
				return p, ok, err
			}
		}
		return Principal{}, false, errBadToken
	}
	s.mu.RLock()
	auths := s.auths
	s.mu.RUnlock()
	for _, a := range auths {
		if p, ok, err := a.Authenticate(r); ok || err != nil {
			return p, ok, err
		}
	}
	return Principal{}, false, nil
}

// Start listens and serves. A listen error is returned at once.
func (s *Server) Start(ctx context.Context) error {
	if !s.rootMounted {
		s.Mount("/", Public, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			httpx.NotFound(w, "no route %s %s", r.Method, r.URL.Path)
		}))
	}
	if err := s.bootstrapUsers(); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("web: listen %s: %w", s.cfg.Listen, err)
	}
	s.ln = ln
	s.srv = &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      120 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.done = make(chan error, 1)
	go func() {
		var err error
		if s.cfg.TLSCertPath != "" {
			err = s.srv.ServeTLS(ln, s.cfg.TLSCertPath, s.cfg.TLSKeyPath)
		} else {
			err = s.srv.Serve(ln)
		}
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.done <- err
	}()
	s.log.Info("listening", "addr", s.Addr(), "tls", s.cfg.TLSCertPath != "")
	return nil
}

// bootstrapUsers loads the users file and, on first start, creates the
// admin: its password is printed once to Stdout and written to a 0600 file;
// only its hash is kept in users.json.
func (s *Server) bootstrapUsers() error {
	if s.users == nil {
		return nil
	}
	if err := s.users.Load(); err != nil {
		return err
	}
	credPath := filepath.Join(s.deps.StateDir, "web", "initial-admin.txt")
	name, pw, err := s.users.Bootstrap(credPath)
	if err != nil {
		return err
	}
	if name != "" {
		out := s.deps.Stdout
		if out == nil {
			out = os.Stdout
		}
		fmt.Fprintf(out, "\nMeridian created the first dashboard user (shown once):\n  username: %s\n  password: %s\n  (also in %s, mode 0600)\n\n", name, pw, credPath)
		s.log.Info("created the initial admin user; credentials printed to stdout and written to a 0600 file", "user", name, "file", credPath)
	}
	return nil
}

// Users returns the user store (nil without a state directory).
func (s *Server) Users() *Users { return s.users }

// Addr returns the listening address.
func (s *Server) Addr() string {
	if s.ln == nil {
		return s.cfg.Listen
	}
	return s.ln.Addr().String()
}

// URL returns the base URL of the server.
func (s *Server) URL() string {
	scheme := "http"
	if s.cfg.TLSCertPath != "" {
		scheme = "https"
	}
	return scheme + "://" + s.Addr()
}

// Stop stops accepting requests and waits for those in flight.
func (s *Server) Stop(ctx context.Context) error {
	if s.srv == nil {
		return nil
	}
	err := s.srv.Shutdown(ctx)
	if e := <-s.done; e != nil && err == nil {
		err = e
	}
	return err
}
