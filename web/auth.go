package web

// Users, API tokens and dashboard sessions.
//
// Users and user API tokens live in one JSON file under the state directory
// (<state_dir>/web/users.json, mode 0600), never in ClickHouse: the server
// must authenticate even while ClickHouse is down, and a handful of rows do
// not need a database. Passwords are stored as PBKDF2-HMAC-SHA256 hashes
// (600,000 iterations, 16-byte salt, stdlib crypto/pbkdf2); API tokens are 32
// random bytes, stored as their SHA-256 (a high-entropy token needs no slow
// hash). Sessions are kept in memory: a restart logs everyone out.
//
// Agent tokens are not here: agents authenticate with their own tokens
// (package probes) on routes mounted with access Self.

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

const (
	sessionCookie = "meridian_session"
	csrfHeader    = "X-CSRF-Token"
	pbkdf2Iter    = 600000
	tokenPrefix   = "mrd_"
)

// ErrCSRF is returned for a state-changing request authenticated by a
// session cookie without the session's CSRF token.
var ErrCSRF = errors.New("missing or invalid CSRF token: send the X-CSRF-Token header given at login")

// User is a dashboard account.
type User struct {
	Name    string    `json:"name"`
	Role    Role      `json:"role"`
	Hash    string    `json:"hash"`
	Created time.Time `json:"created"`
}

// APIToken is a user-created API token; only its SHA-256 is stored.
type APIToken struct {
	Name    string    `json:"name"`
	Role    Role      `json:"role"`
	SHA256  string    `json:"sha256"`
	Created time.Time `json:"created"`
}

type usersFile struct {
	Users  []User     `json:"users"`
	Tokens []APIToken `json:"tokens"`
}

// Users is the file-backed store of users and API tokens, and the in-memory
// session table. It implements Authenticator.
type Users struct {
	path   string
	secure bool
	idle   time.Duration
	maxAge time.Duration

	mu       sync.RWMutex
	data     usersFile
	sessions map[[32]byte]*session
	now      func() time.Time

	// limiter throttles failed logins (see loginLimiter).
	limiter *loginLimiter
}

type session struct {
	user    string
	role    Role
	csrf    string
	created time.Time
	seen    time.Time
}

// NewUsers returns a store backed by path (not read until Load).
func NewUsers(path string, secureCookies bool) *Users {
	u := &Users{path: path, secure: secureCookies, idle: 12 * time.Hour, maxAge: 7 * 24 * time.Hour,
		sessions: map[[32]byte]*session{}, now: time.Now}
	u.limiter = newLoginLimiter(loginBurst, loginRefill, func() time.Time { return u.now() })
	return u
}

// Load reads the file; a missing file is an empty store.
func (u *Users) Load() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	b, err := os.ReadFile(u.path)
	if errors.Is(err, os.ErrNotExist) {
		u.data = usersFile{}
		return nil
	}
	if err != nil {
		return fmt.Errorf("web: read users: %w", err)
	}
	var d usersFile
	if err := json.Unmarshal(b, &d); err != nil {
		return fmt.Errorf("web: %s: %w", u.path, err)
	}
	u.data = d
	return nil
}

// save writes the file atomically with mode 0600; u.mu is held.
func (u *Users) save() error {
	if err := os.MkdirAll(filepath.Dir(u.path), 0o700); err != nil {
		return fmt.Errorf("web: users dir: %w", err)
	}
	b, err := json.MarshalIndent(u.data, "", "  ")
	if err != nil {
		return err
	}
	tmp := u.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("web: write users: %w", err)
	}
	if err := os.Rename(tmp, u.path); err != nil {
		return fmt.Errorf("web: write users: %w", err)
	}
	return nil
}

var userNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// HashPassword returns the storable PBKDF2 hash of password.
func HashPassword(password string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key, err := pbkdf2.Key(sha256.New, password, salt, pbkdf2Iter, 32)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("pbkdf2-sha256$%d$%s$%s", pbkdf2Iter,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// CheckPassword reports whether password matches hash.
func CheckPassword(hash, password string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 4 || parts[0] != "pbkdf2-sha256" {
		return false
	}
	iter, err := strconv.Atoi(parts[1])
	if err != nil || iter < 1 || iter > 10_000_000 {
		return false
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[2])
	want, err2 := base64.RawStdEncoding.DecodeString(parts[3])
	if err1 != nil || err2 != nil {
		return false
	}
	got, err := pbkdf2.Key(sha256.New, password, salt, iter, len(want))
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare(got, want) == 1
}

// dummyHash is checked for unknown users so that login takes as long
// whether or not the user exists.
var dummyHash = func() string { h, _ := HashPassword("meridian-dummy"); return h }()

func randomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// Count returns the number of users.
func (u *Users) Count() int {
	u.mu.RLock()
	defer u.mu.RUnlock()
	return len(u.data.Users)
}

// Add creates a user.
func (u *Users) Add(name string, role Role, password string) error {
	if !userNameRe.MatchString(name) {
		return fmt.Errorf("user name: expected 1-64 letters, digits, . _ @ -, got %q", name)
	}
	if !role.Valid() {
		return fmt.Errorf("role: expected viewer, operator or admin, got %q", role)
	}
	if len(password) < 12 {
		return errors.New("password: expected at least 12 characters")
	}
	h, err := HashPassword(password)
	if err != nil {
		return err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, x := range u.data.Users {
		if x.Name == name {
			return fmt.Errorf("user %q exists", name)
		}
	}
	u.data.Users = append(u.data.Users, User{Name: name, Role: role, Hash: h, Created: u.now().UTC()})
	return u.save()
}

// Delete removes a user and their sessions.
func (u *Users) Delete(name string) (bool, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for i, x := range u.data.Users {
		if x.Name == name {
			u.data.Users = append(u.data.Users[:i], u.data.Users[i+1:]...)
			for k, s := range u.sessions {
				if s.user == name {
					delete(u.sessions, k)
				}
			}
			return true, u.save()
		}
	}
	return false, nil
}

// UserInfo is a user as the API shows it (no hash).
type UserInfo struct {
	Name    string    `json:"name"`
	Role    Role      `json:"role"`
	Created time.Time `json:"created"`
}

// List returns the users without their hashes.
func (u *Users) List() []UserInfo {
	u.mu.RLock()
	defer u.mu.RUnlock()
	out := make([]UserInfo, 0, len(u.data.Users))
	for _, x := range u.data.Users {
		out = append(out, UserInfo{x.Name, x.Role, x.Created})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// CreateToken makes an API token and returns its value (shown once).
func (u *Users) CreateToken(name string, role Role) (string, error) {
	if !userNameRe.MatchString(name) {
		return "", fmt.Errorf("token name: expected 1-64 letters, digits, . _ @ -, got %q", name)
	}
	if !role.Valid() {
		return "", fmt.Errorf("role: expected viewer, operator or admin, got %q", role)
	}
	tok := tokenPrefix + randomString(32)
	sum := sha256.Sum256([]byte(tok))
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, t := range u.data.Tokens {
		if t.Name == name {
			return "", fmt.Errorf("token %q exists", name)
		}
	}
	u.data.Tokens = append(u.data.Tokens, APIToken{Name: name, Role: role, SHA256: hex.EncodeToString(sum[:]), Created: u.now().UTC()})
	return tok, u.save()
}

// DeleteToken revokes a token.
func (u *Users) DeleteToken(name string) (bool, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for i, t := range u.data.Tokens {
		if t.Name == name {
			u.data.Tokens = append(u.data.Tokens[:i], u.data.Tokens[i+1:]...)
			return true, u.save()
		}
	}
	return false, nil
}

// TokenInfo is a token as the API lists it (no hash).
type TokenInfo struct {
	Name    string    `json:"name"`
	Role    Role      `json:"role"`
	Created time.Time `json:"created"`
}

// Tokens lists the API tokens.
func (u *Users) Tokens() []TokenInfo {
	u.mu.RLock()
	defer u.mu.RUnlock()
	out := make([]TokenInfo, 0, len(u.data.Tokens))
	for _, t := range u.data.Tokens {
		out = append(out, TokenInfo{t.Name, t.Role, t.Created})
	}
	return out
}

// Login checks credentials and opens a session, returning the cookie value
// and the CSRF token.
func (u *Users) Login(name, password string) (Principal, string, string, bool) {
	u.mu.RLock()
	var found *User
	for i := range u.data.Users {
		if u.data.Users[i].Name == name {
			x := u.data.Users[i]
			found = &x
		}
	}
	u.mu.RUnlock()
	if found == nil {
		CheckPassword(dummyHash, password)
		return Principal{}, "", "", false
	}
	if !CheckPassword(found.Hash, password) {
		return Principal{}, "", "", false
	}
	id := randomString(32)
	csrf := randomString(32)
	now := u.now()
	u.mu.Lock()
	u.sessions[sha256.Sum256([]byte(id))] = &session{user: found.Name, role: found.Role, csrf: csrf, created: now, seen: now}
	u.mu.Unlock()
	return Principal{Name: found.Name, Role: found.Role, Via: "session"}, id, csrf, true
}

// Logout ends the session of r.
func (u *Users) Logout(r *http.Request) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return
	}
	u.mu.Lock()
	delete(u.sessions, sha256.Sum256([]byte(c.Value)))
	u.mu.Unlock()
}

// Cookie returns the session cookie for id (max age -1 clears it).
func (u *Users) Cookie(id string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: sessionCookie, Value: id, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: u.secure, MaxAge: maxAge}
}

// CSRF returns the CSRF token of the request's session.
func (u *Users) CSRF(r *http.Request) string {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return ""
	}
	u.mu.RLock()
	defer u.mu.RUnlock()
	if s := u.sessions[sha256.Sum256([]byte(c.Value))]; s != nil {
		return s.csrf
	}
	return ""
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// Authenticate implements Authenticator: user API tokens (Bearer) and
// session cookies. A session on a state-changing request must carry its
// CSRF token.
func (u *Users) Authenticate(r *http.Request) (Principal, bool, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		tok, ok := strings.CutPrefix(h, "Bearer ")
		if !ok {
			return Principal{}, false, nil
		}
		sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
		u.mu.RLock()
		defer u.mu.RUnlock()
		for _, t := range u.data.Tokens {
			want, err := hex.DecodeString(t.SHA256)
			if err == nil && subtle.ConstantTimeCompare(sum[:], want) == 1 {
				return Principal{Name: t.Name, Role: t.Role, Via: "token"}, true, nil
			}
		}
		return Principal{}, false, nil
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return Principal{}, false, nil
	}
	key := sha256.Sum256([]byte(c.Value))
	now := u.now()
	u.mu.Lock()
	defer u.mu.Unlock()
	s := u.sessions[key]
	if s == nil {
		return Principal{}, false, nil
	}
	if now.Sub(s.seen) > u.idle || now.Sub(s.created) > u.maxAge {
		delete(u.sessions, key)
		return Principal{}, false, nil
	}
	// The role may have changed since login: take the current one.
	role := Role("")
	for _, x := range u.data.Users {
		if x.Name == s.user {
			role = x.Role
		}
	}
	if role == "" {
		delete(u.sessions, key)
		return Principal{}, false, nil
	}
	s.seen = now
	if !safeMethod(r.Method) {
		got := r.Header.Get(csrfHeader)
		if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(s.csrf)) != 1 {
			return Principal{}, false, ErrCSRF
		}
	}
	return Principal{Name: s.user, Role: role, Via: "session"}, true, nil
}

// Bootstrap creates an admin with a random password when there is no user,
// writes the credentials to credPath (0600) and returns them; it returns
// empty strings when users exist.
func (u *Users) Bootstrap(credPath string) (name, password string, err error) {
	if u.Count() > 0 {
		return "", "", nil
	}
	name, password = "admin", randomString(18)
	if err := u.Add(name, RoleAdmin, password); err != nil {
		return "", "", err
	}
	if err := os.MkdirAll(filepath.Dir(credPath), 0o700); err != nil {
		return "", "", err
	}
	content := fmt.Sprintf("# Meridian initial admin, created %s. Change or delete after first login.\nusername: %s\npassword: %s\n",
		u.now().UTC().Format(time.RFC3339), name, password)
	if err := os.WriteFile(credPath, []byte(content), 0o600); err != nil {
		return "", "", fmt.Errorf("web: write %s: %w", credPath, err)
	}
	return name, password, nil
}

// Failed logins are throttled per client address and per user name: each
// has a token bucket of loginBurst failures, one failure forgiven every
// loginRefill. A login attempt takes a token from both buckets before the
// password is checked (a refused attempt costs no PBKDF2 hash) and a
// successful one gives them back; with either bucket empty the server
// answers 429 with Retry-After. So 5 failures in a row, then one attempt a
// minute for that client and for that user name.
const (
	loginBurst  = 5
	loginRefill = time.Minute
	// loginBuckets bounds the table; beyond it, buckets back to full (the
	// same as no bucket) are forgotten.
	loginBuckets = 10000
)

type loginLimiter struct {
	burst   float64
	refill  time.Duration
	now     func() time.Time
	limited *prometheus.CounterVec

	mu      sync.Mutex
	buckets map[[32]byte]*loginBucket
}

type loginBucket struct {
	tokens float64
	at     time.Time
}

func newLoginLimiter(burst int, refill time.Duration, now func() time.Time) *loginLimiter {
	return &loginLimiter{burst: float64(burst), refill: refill, now: now, buckets: map[[32]byte]*loginBucket{},
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meridian_web_login_rate_limited_total",
			Help: "Login attempts refused (429) after too many failures, by the limit hit: client address or user name."},
			[]string{"limit"})}
}

// loginKey is a limiter key: a kind ("client" or "user") and a value.
type loginKey struct{ kind, value string }

// id is the key in the table: a hash, so that a long user name takes no
// more room than a short one.
func (k loginKey) id() [32]byte { return sha256.Sum256([]byte(k.kind + "\x00" + k.value)) }

// take reserves one failure from the bucket of every key. With a bucket
// empty it reserves nothing and returns how long until that bucket has a
// token again and the kind of its key.
func (l *loginLimiter) take(keys ...loginKey) (time.Duration, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if len(l.buckets) > loginBuckets {
		for k, b := range l.buckets {
			if l.level(b, now) >= l.burst {
				delete(l.buckets, k)
			}
		}
	}
	var wait time.Duration
	var kind string
	for _, k := range keys {
		if b := l.buckets[k.id()]; b != nil {
			if lv := l.level(b, now); lv < 1 {
				if w := time.Duration((1 - lv) * float64(l.refill)); w > wait {
					wait, kind = w, k.kind
				}
			}
		}
	}
	if wait > 0 {
		l.limited.WithLabelValues(kind).Inc()
		return wait, kind
	}
	for _, k := range keys {
		id := k.id()
		b := l.buckets[id]
		if b == nil {
			b = &loginBucket{tokens: l.burst, at: now}
			l.buckets[id] = b
		}
		b.tokens, b.at = l.level(b, now)-1, now
	}
	return 0, ""
}

// give returns the token take reserved (the login succeeded).
func (l *loginLimiter) give(keys ...loginKey) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	for _, k := range keys {
		if b := l.buckets[k.id()]; b != nil {
			b.tokens, b.at = math.Min(l.burst, l.level(b, now)+1), now
		}
	}
}

// level is the bucket's token count at now.
func (l *loginLimiter) level(b *loginBucket, now time.Time) float64 {
	return math.Min(l.burst, b.tokens+float64(now.Sub(b.at))/float64(l.refill))
}

// parsePrefix reads a CIDR prefix or a single address (a /32 or /128).
func parsePrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func trusted(a netip.Addr, proxies []netip.Prefix) bool {
	for _, p := range proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientAddr is the address of r's client: the peer's address or, when the
// peer is a trusted proxy, the last address of X-Forwarded-For that is not
// a trusted proxy (addresses to its left were written by the client and
// prove nothing). The zero Addr when the peer address does not parse.
func clientAddr(r *http.Request, proxies []netip.Prefix) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	a = a.Unmap()
	if !trusted(a, proxies) {
		return a
	}
	var hops []string
	for _, h := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(h, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		h, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break // garbage: stop at the last address we can vouch for
		}
		a = h.Unmap()
		if !trusted(a, proxies) {
			break
		}
	}
	return a
}

// clientKey is the client address of r for the login limit: the IP
// address, or its /64 for IPv6 (one host commonly holds a whole /64).
// Behind a reverse proxy, set http.trusted_proxies: otherwise every client
// has the proxy's address.
func clientKey(r *http.Request, proxies []netip.Prefix) string {
	a := clientAddr(r, proxies)
	if !a.IsValid() {
		return r.RemoteAddr
	}
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}
