package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/meridian-obs/meridian/internal/httpx"
)

func TestPasswordHash(t *testing.T) {
	h, err := HashPassword("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	h2, _ := HashPassword("correct horse battery")
	if h == h2 || !strings.HasPrefix(h, "pbkdf2-sha256$600000$") {
		t.Fatalf("hashes must be salted PBKDF2: %s %s", h, h2)
	}
	if !CheckPassword(h, "correct horse battery") || CheckPassword(h, "correct horse batterY") || CheckPassword("garbage", "x") {
		t.Fatal("CheckPassword")
	}
}

func TestSessionExpiry(t *testing.T) {
	u := NewUsers(filepath.Join(t.TempDir(), "users.json"), true)
	u.idle, u.maxAge = time.Hour, 3*time.Hour
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	u.now = func() time.Time { return now }
	must(t, u.Add("ann", RoleViewer, "a-long-password"))
	_, id, csrf, ok := u.Login("ann", "a-long-password")
	if !ok {
		t.Fatal("login")
	}
	if c := u.Cookie(id, 10); !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
		t.Fatalf("cookie under TLS: %+v", c)
	}
	req := func(method, token string) (Principal, bool, error) {
		r := httptest.NewRequest(method, "/", nil)
		r.AddCookie(&http.Cookie{Name: sessionCookie, Value: id})
		if token != "" {
			r.Header.Set(csrfHeader, token)
		}
		return u.Authenticate(r)
	}
	for i := 0; i < 4; i++ { // used every 40 minutes: stays open past the idle timeout
		now = now.Add(40 * time.Minute)
		if p, ok, err := req("GET", ""); !ok || err != nil || p.Name != "ann" {
			t.Fatalf("step %d: %v %v", i, ok, err)
		}
	}
	if _, _, err := req("POST", ""); err != ErrCSRF {
		t.Fatalf("POST without CSRF token: %v", err)
	}
	if _, ok, err := req("POST", csrf); !ok || err != nil {
		t.Fatalf("POST with CSRF token: %v %v", ok, err)
	}
	now = now.Add(40 * time.Minute) // 200 min: past the 3 h maximum age
	if _, ok, _ := req("GET", ""); ok {
		t.Fatal("session outlived its maximum age")
	}
	_, id, _, _ = u.Login("ann", "a-long-password")
	now = now.Add(61 * time.Minute)
	if _, ok, _ := req("GET", ""); ok {
		t.Fatal("session outlived its idle timeout")
	}
	// Deleting the user ends their sessions.
	_, id, _, _ = u.Login("ann", "a-long-password")
	if _, err := u.Delete("ann"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := req("GET", ""); ok {
		t.Fatal("session of a deleted user")
	}
}

func TestLoginLimiter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newLoginLimiter(5, time.Minute, func() time.Time { return now })
	client := func(i int) loginKey { return loginKey{"client", fmt.Sprintf("192.0.2.%d", i)} }
	ann := loginKey{"user", "ann"}
	// Five failures for ann from five clients, then ann is refused from any.
	for i := 0; i < 5; i++ {
		if wait, _ := l.take(client(i), ann); wait != 0 {
			t.Fatalf("failure %d refused (wait %s)", i+1, wait)
		}
	}
	if wait, kind := l.take(client(9), ann); wait != time.Minute || kind != "user" {
		t.Fatalf("sixth attempt: wait %s limit %q, want 1m user", wait, kind)
	}
	now = now.Add(30 * time.Second)
	if wait, _ := l.take(client(9), ann); wait != 30*time.Second {
		t.Fatalf("after 30 s: wait %s, want 30s", wait)
	}
	now = now.Add(30 * time.Second) // one failure forgiven per minute
	if wait, _ := l.take(client(9), ann); wait != 0 {
		t.Fatalf("after a minute: wait %s, want an attempt", wait)
	}
	if wait, _ := l.take(client(9), ann); wait == 0 {
		t.Fatal("second attempt of the minute allowed")
	}
	// One client failing for many users is refused for any user.
	for i := 0; i < 5; i++ {
		if wait, _ := l.take(client(100), loginKey{"user", fmt.Sprint("u", i)}); wait != 0 {
			t.Fatalf("client failure %d refused", i+1)
		}
	}
	if wait, kind := l.take(client(100), loginKey{"user", "bob"}); wait == 0 || kind != "client" {
		t.Fatalf("sixth user from one client: wait %s limit %q, want a client limit", wait, kind)
	}
	// Successful logins give their token back: never limited.
	for i := 0; i < 20; i++ {
		if wait, _ := l.take(client(200), loginKey{"user", "carol"}); wait != 0 {
			t.Fatalf("login %d of a user who gets the password right refused", i+1)
		}
		l.give(client(200), loginKey{"user", "carol"})
	}
	if got := testutil.ToFloat64(l.limited.WithLabelValues("user")); got != 3 {
		t.Errorf("user-limited count %v, want 3", got)
	}
	if got := testutil.ToFloat64(l.limited.WithLabelValues("client")); got != 1 {
		t.Errorf("client-limited count %v, want 1", got)
	}
	for addr, want := range map[string]string{"192.0.2.7:5000": "192.0.2.7", "[2001:db8:1:2:3::4]:443": "2001:db8:1:2::/64",
		"[::ffff:192.0.2.8]:80": "192.0.2.8"} {
		r := httptest.NewRequest("POST", "/", nil)
		r.RemoteAddr = addr
		r.Header.Set("X-Forwarded-For", "203.0.113.9") // no trusted proxy: ignored
		if got := clientKey(r, nil); got != want {
			t.Errorf("clientKey(%s) = %s, want %s", addr, got, want)
		}
	}
}

// Behind trusted proxies the client is the last X-Forwarded-For address
// that is not a trusted proxy; what a client writes to the left of it, or
// sends without a trusted proxy, is not believed.
func TestClientBehindTrustedProxies(t *testing.T) {
	var proxies []netip.Prefix
	for _, s := range []string{"10.0.0.0/8", "::1", "2001:db8:ff::/48"} {
		p, err := parsePrefix(s)
		if err != nil {
			t.Fatal(err)
		}
		proxies = append(proxies, p)
	}
	for _, c := range []struct {
		remote string
		xff    []string
		want   string
	}{
		{"10.1.2.3:5000", []string{"198.51.100.4"}, "198.51.100.4"},
		{"10.1.2.3:5000", []string{"6.6.6.6, 198.51.100.4"}, "198.51.100.4"},     // spoofed left part ignored
		{"10.1.2.3:5000", []string{"198.51.100.4, 10.9.9.9"}, "198.51.100.4"},    // two proxies
		{"10.1.2.3:5000", []string{"198.51.100.4", "10.9.9.9"}, "198.51.100.4"},  // two headers
		{"[::1]:443", []string{"2001:db8:1:2::7"}, "2001:db8:1:2::/64"},          // IPv6 client
		{"10.1.2.3:5000", []string{"not-an-address, 10.9.9.9"}, "10.9.9.9"},      // garbage: last trusted hop
		{"10.1.2.3:5000", nil, "10.1.2.3"},                                       // no header: the proxy
		{"192.0.2.50:5000", []string{"198.51.100.4"}, "192.0.2.50"},              // untrusted peer: header ignored
		{"[2001:db8:ff::5]:80", []string{"::ffff:198.51.100.9"}, "198.51.100.9"}, // mapped address unmapped
	} {
		r := httptest.NewRequest("POST", "/", nil)
		r.RemoteAddr = c.remote
		for _, h := range c.xff {
			r.Header.Add("X-Forwarded-For", h)
		}
		if got := clientKey(r, proxies); got != c.want {
			t.Errorf("%s with X-Forwarded-For %q: client %s, want %s", c.remote, c.xff, got, c.want)
		}
	}
	if _, err := parsePrefix("10.0.0.0/33"); err == nil {
		t.Error("a bad prefix parsed")
	}
}

func TestLoginRateLimited(t *testing.T) {
	s := startServer(t, nil, t.TempDir(), nil)
	var now atomic.Int64
	now.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	s.users.limiter.mu.Lock() // take reads now under the lock
	s.users.limiter.now = func() time.Time { return time.Unix(0, now.Load()) }
	s.users.limiter.mu.Unlock()
	c := newClient(t, s.URL())
	for i := 0; i < 5; i++ {
		if code := c.login(s.admin, "wrong password!"); code != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d, want 401", i+1, code)
		}
	}
	// Refused without checking the password, right or not.
	resp, body := c.do("POST", "/api/v1/session", map[string]string{"username": s.admin, "password": s.adminP}, nil)
	var eb httpx.ErrorBody
	if err := json.Unmarshal(body, &eb); err != nil || resp.StatusCode != http.StatusTooManyRequests || eb.Error.Code != "rate_limited" {
		t.Fatalf("sixth attempt: %d %s, want 429 rate_limited", resp.StatusCode, body)
	}
	if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
		t.Fatalf("Retry-After %q, want 1..60 seconds", resp.Header.Get("Retry-After"))
	}
	now.Add(int64(61 * time.Second))
	if code := c.login(s.admin, s.adminP); code != http.StatusOK {
		t.Fatalf("login a minute later: %d, want 200", code)
	}
	if got := testutil.ToFloat64(s.users.limiter.limited); got != 1 {
		t.Errorf("meridian_web_login_rate_limited_total = %v, want 1", got)
	}
}
