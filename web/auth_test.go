package web

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
