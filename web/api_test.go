package web

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meridian-obs/meridian/internal/httpx"
	"github.com/meridian-obs/meridian/internal/testutil/chtest"
	"github.com/meridian-obs/meridian/pipeline/store"
)

func TestFirstStartAdminAndSessions(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, nil, dir, nil)
	if s.admin != "admin" || len(s.adminP) < 20 {
		t.Fatalf("first start did not print credentials: %q", s.out.String())
	}
	credFile := filepath.Join(dir, "web", "initial-admin.txt")
	st, err := os.Stat(credFile)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file: %v %v", st, err)
	}
	users, _ := os.ReadFile(filepath.Join(dir, "web", "users.json"))
	if strings.Contains(string(users), s.adminP) || !strings.Contains(string(users), "pbkdf2-sha256$") {
		t.Fatalf("users.json must hold only a hash: %s", users)
	}
	// A second start with the same state prints nothing.
	s2 := startServer(t, nil, dir, nil)
	if s2.out.Len() != 0 {
		t.Fatalf("second start printed %q", s2.out.String())
	}

	c := newClient(t, s.URL())
	if code := c.login("admin", "wrong password!"); code != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", code)
	}
	if code := c.getJSON("/api/v1/me", nil); code != http.StatusUnauthorized {
		t.Fatalf("anonymous /me: %d", code)
	}
	resp, _ := c.do("POST", "/api/v1/session", map[string]string{"username": "admin", "password": s.adminP}, nil)
	var cookie *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == sessionCookie {
			cookie = ck
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Secure {
		t.Fatalf("session cookie flags: %+v", cookie)
	}
	if c.login("admin", s.adminP) != http.StatusOK || c.csrf == "" {
		t.Fatal("login failed")
	}
	var me meResponse
	if code := c.getJSON("/api/v1/me", &me); code != 200 || me.Name != "admin" || me.Role != RoleAdmin || me.Via != "session" {
		t.Fatalf("me: %d %+v", code, me)
	}

	// State changes with a session need the CSRF token.
	newUser := map[string]string{"name": "olivia", "role": "operator", "password": "operator-password-1"}
	resp, body := c.do("POST", "/api/v1/users", newUser, nil)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), `"csrf"`) {
		t.Fatalf("no CSRF token: %d %s", resp.StatusCode, body)
	}
	resp, _ = c.do("POST", "/api/v1/users", newUser, map[string]string{csrfHeader: "forged"})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("forged CSRF token: %d", resp.StatusCode)
	}
	resp, body = c.do("POST", "/api/v1/users", newUser, map[string]string{csrfHeader: c.csrf})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create user: %d %s", resp.StatusCode, body)
	}
	resp, body = c.do("POST", "/api/v1/users", map[string]string{"name": "vic", "role": "viewer", "password": "viewer-password-1"},
		map[string]string{csrfHeader: c.csrf})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create viewer: %d %s", resp.StatusCode, body)
	}

	// API tokens: shown once, stored as a hash, usable as Bearer.
	resp, body = c.do("POST", "/api/v1/tokens", map[string]string{"name": "ci", "role": "viewer"}, map[string]string{csrfHeader: c.csrf})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create token: %d %s", resp.StatusCode, body)
	}
	var tok struct{ Token string }
	_ = json.Unmarshal(body, &tok)
	if !strings.HasPrefix(tok.Token, tokenPrefix) {
		t.Fatalf("token: %s", body)
	}
	users, _ = os.ReadFile(filepath.Join(dir, "web", "users.json"))
	if strings.Contains(string(users), tok.Token) || strings.Contains(string(users), "operator-password-1") {
		t.Fatal("users.json holds a secret in clear")
	}
	anon := newClient(t, s.URL())
	resp, body = anon.do("GET", "/api/v1/me", nil, map[string]string{"Authorization": "Bearer " + tok.Token})
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"via":"token"`) {
		t.Fatalf("bearer token: %d %s", resp.StatusCode, body)
	}
	resp, _ = anon.do("GET", "/api/v1/users", nil, map[string]string{"Authorization": "Bearer " + tok.Token})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("viewer token on admin route: %d", resp.StatusCode)
	}
	resp, _ = anon.do("GET", "/api/v1/me", nil, map[string]string{"Authorization": "Bearer mrd_nope"})
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("bad token: %d", resp.StatusCode)
	}
	// No list shows a hash or a password.
	_, body = c.do("GET", "/api/v1/users", nil, nil)
	if strings.Contains(string(body), "pbkdf2") || strings.Contains(string(body), "hash") {
		t.Fatalf("users list leaks hashes: %s", body)
	}

	// Logout ends the session.
	resp, _ = c.do("DELETE", "/api/v1/session", nil, map[string]string{csrfHeader: c.csrf})
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	if code := c.getJSON("/api/v1/me", nil); code != http.StatusUnauthorized {
		t.Fatalf("after logout: %d", code)
	}
	// A cross-origin login is refused.
	resp, _ = anon.do("POST", "/api/v1/session", map[string]string{"username": "admin", "password": s.adminP},
		map[string]string{"Origin": "https://evil.example"})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-origin login: %d", resp.StatusCode)
	}
}

func TestBadInputIsJSON(t *testing.T) {
	conn, _ := chtest.DB(t)
	s := startServer(t, conn, t.TempDir(), nil)
	c := newClient(t, s.URL())
	if c.login(s.admin, s.adminP) != 200 {
		t.Fatal("login")
	}
	big := []byte(`{"username":"` + strings.Repeat("a", 100<<10) + `"}`)
	cases := []struct {
		name, method, path string
		body               any
		code               int
		errCode            string
	}{
		{"unknown route", "GET", "/api/v1/nope", nil, 404, "not_found"},
		{"unknown asset", "GET", "/ui/nope.js", nil, 404, "not_found"},
		{"bad range", "GET", "/api/v1/probes/series?range=banana", nil, 400, "bad_request"},
		{"unknown param", "GET", "/api/v1/probes/series?colour=red", nil, 400, "bad_request"},
		{"from after to", "GET", "/api/v1/flows/series?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", nil, 400, "bad_request"},
		{"tiny step", "GET", "/api/v1/flows/series?step=1s", nil, 400, "bad_request"},
		{"bad by", "GET", "/api/v1/flows/top?by=colour", nil, 400, "bad_request"},
		{"bad limit", "GET", "/api/v1/firewall/top?limit=0", nil, 400, "bad_request"},
		{"bad proto", "GET", "/api/v1/flows/top?proto=xyz", nil, 400, "bad_request"},
		{"range too long", "GET", "/api/v1/probes/summary?range=900d", nil, 400, "bad_request"},
		{"oversized body", "POST", "/api/v1/session", big, 413, "too_large"},
		{"not json", "POST", "/api/v1/session", nil, 415, "unsupported_media_type"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{csrfHeader: c.csrf}
			resp, body := c.do(tc.method, tc.path, tc.body, hdr)
			if resp.StatusCode != tc.code {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.code, body)
			}
			var eb httpx.ErrorBody
			if err := json.Unmarshal(body, &eb); err != nil || eb.Error.Code != tc.errCode || eb.Error.Message == "" {
				t.Fatalf("error body %s (err %v), want code %s", body, err, tc.errCode)
			}
		})
	}
	// Without credentials every API route is 401, health is public.
	anon := newClient(t, s.URL())
	for _, p := range []string{"/api/v1/probes/series", "/api/v1/flows/top", "/api/v1/firewall/top", "/api/v1/filters"} {
		if code := anon.getJSON(p, nil); code != http.StatusUnauthorized {
			t.Errorf("%s anonymous: %d", p, code)
		}
	}
	if code := anon.getJSON("/healthz", nil); code != 200 {
		t.Errorf("healthz: %d", code)
	}
}

func TestDataEndpoints(t *testing.T) {
	conn, _ := chtest.DB(t)
	now := time.Now().UTC()
	// The seed's two inserts stay two parts of each rollup until the
	// "rollups merged" test merges them.
	for _, rb := range store.ProbeRollups {
		if err := conn.Exec(context.Background(), "SYSTEM STOP MERGES "+rb.Table); err != nil {
			t.Fatal(err)
		}
	}
	seed(t, conn, now)
	s := startServer(t, conn, t.TempDir(), nil)
	c := newClient(t, s.URL())
	if c.login(s.admin, s.adminP) != 200 {
		t.Fatal("login")
	}

	t.Run("probe series", func(t *testing.T) {
		var ps ProbeSeries
		if code := c.getJSON("/api/v1/probes/series?range=6h&src_region=eu-west&target=web.eu-west.example:443", &ps); code != 200 {
			t.Fatalf("status %d", code)
		}
		if len(ps.T) < 60 || ps.Source != "probe_rollup_5m" {
			t.Fatalf("expected ≥60 five-minute points from the 5m rollup, got %d from %s", len(ps.T), ps.Source)
		}
		for i := range ps.T {
			m := ps.Median[i]
			// 2 to 8 ms, within the histogram's resolution (±7 %).
			if m == nil || *m < 2*0.93 || *m > 8*1.07 || *ps.P05[i] > *m || *ps.P95[i] < *m {
				t.Fatalf("point %d: median %v band %v..%v, want 2..8 ms inside the band", i, m, ps.P05[i], ps.P95[i])
			}
			if *ps.Loss[i] != 0 {
				t.Fatalf("point %d: loss %v, want 0", i, *ps.Loss[i])
			}
		}
		// The lossy path shows its loss in the last hour only.
		if code := c.getJSON("/api/v1/probes/series?range=6h&src_region=us-east&target_region=ap-south&step=1h", &ps); code != 200 {
			t.Fatalf("status %d", code)
		}
		if ps.Source != "probe_rollup_1h" {
			t.Fatalf("step 1h should read the hourly rollup, got %s", ps.Source)
		}
		last := ps.Loss[len(ps.Loss)-1]
		if last == nil || *last < 0.05 {
			t.Fatalf("last hour loss %v, want >0.05 (the seeded 30%% loss)", last)
		}
		if first := ps.Loss[0]; first == nil || *first != 0 {
			t.Fatalf("first hour loss %v, want 0", first)
		}
	})

	t.Run("region series", func(t *testing.T) {
		// The region view reads its own rollup; the same series through
		// the path rollup (an extra filter that keeps every path) agrees.
		var reg, paths ProbeSeries
		if code := c.getJSON("/api/v1/probes/series?range=24h&region=eu-west", &reg); code != 200 {
			t.Fatalf("status %d", code)
		}
		if code := c.getJSON("/api/v1/probes/series?range=24h&region=eu-west&check=ping", &paths); code != 200 {
			t.Fatalf("status %d", code)
		}
		if reg.Source != "probe_rollup_region_1h" || paths.Source != "probe_rollup_1h" {
			t.Fatalf("sources %s and %s, want probe_rollup_region_1h and probe_rollup_1h", reg.Source, paths.Source)
		}
		var total uint64
		for _, n := range reg.Rounds {
			total += n
		}
		if total != 72*6 { // eu-west as source (4 targets) or as target region (2 more)
			t.Fatalf("rounds %d, want %d", total, 72*6)
		}
		if len(reg.T) != len(paths.T) {
			t.Fatalf("points: %d and %d", len(reg.T), len(paths.T))
		}
		for i := range reg.T {
			if reg.T[i] != paths.T[i] || reg.Rounds[i] != paths.Rounds[i] || reg.Received[i] != paths.Received[i] ||
				*reg.Median[i] != *paths.Median[i] || *reg.P95[i] != *paths.P95[i] || *reg.Min[i] != *paths.Min[i] {
				t.Fatalf("point %d differs: region rollup t=%d rounds=%d median=%v, path rollup t=%d rounds=%d median=%v",
					i, reg.T[i], reg.Rounds[i], *reg.Median[i], paths.T[i], paths.Rounds[i], *paths.Median[i])
			}
		}
	})

	t.Run("probe summary and filters", func(t *testing.T) {
		var all, one struct{ Paths []ProbePath }
		c.getJSON("/api/v1/probes/summary?range=6h", &all)
		c.getJSON("/api/v1/probes/summary?range=6h&region=eu-west", &one)
		if len(all.Paths) != 12 {
			t.Fatalf("paths: %d, want 3 sources × 4 targets", len(all.Paths))
		}
		for _, p := range all.Paths {
			want := baseRTT(p.SrcRegion, p.TargetRegion) + 3 // the median of +0…+6 ms
			if p.Median == nil || math.Abs(*p.Median-want)/want > 0.08 || p.P95 == nil || *p.P95 < *p.Median {
				t.Errorf("%s → %s: median %v p95 %v, want %.1f ms (±8 %%)", p.SrcRegion, p.Target, p.Median, p.P95, want)
			}
		}
		if len(one.Paths) != 6 { // eu-west as source (4) or as target region (2 more)
			t.Fatalf("paths with region eu-west: %d, want 6", len(one.Paths))
		}
		var m struct{ Cells []ProbeCell }
		c.getJSON("/api/v1/probes/matrix?range=6h", &m)
		if len(m.Cells) != 9 {
			t.Fatalf("matrix cells: %d, want 9", len(m.Cells))
		}
		var f struct{ Regions, Targets, Devices []string }
		c.getJSON("/api/v1/filters?range=6h", &f)
		if len(f.Regions) != 3 || len(f.Targets) != 4 || len(f.Devices) != 2 {
			t.Fatalf("filters: %+v", f)
		}
	})

	t.Run("rollups merged", func(t *testing.T) {
		// Merging the rollups' parts (SummingMergeTree adds counters and
		// histogram maps, merges the states) changes no answer. Fixed
		// ranges: the answers name their range.
		end := now.Add(time.Minute).Unix()
		rng := func(d time.Duration) string {
			return fmt.Sprintf("from=%d&to=%d", now.Add(-d).Unix(), end)
		}
		urls := []string{"/api/v1/probes/series?src_region=us-east&" + rng(6*time.Hour),
			"/api/v1/probes/series?step=1h&" + rng(6*time.Hour),
			"/api/v1/probes/series?region=ap-south&" + rng(24*time.Hour), "/api/v1/probes/series?" + rng(30*24*time.Hour),
			"/api/v1/probes/summary?" + rng(6*time.Hour), "/api/v1/probes/summary?" + rng(24*time.Hour),
			"/api/v1/probes/summary?" + rng(7*24*time.Hour), "/api/v1/probes/matrix?" + rng(6*time.Hour)}
		get := func(u string) string {
			resp, body := c.do("GET", u, nil, nil)
			if resp.StatusCode != 200 {
				t.Fatalf("%s: %d %s", u, resp.StatusCode, body)
			}
			return string(body)
		}
		before := map[string]string{}
		for _, u := range urls {
			before[u] = get(u)
		}
		// Parts and daily partitions of the hourly rollup (the seed's 6
		// hours may span midnight).
		parts := func() (n, p uint64) {
			if err := conn.QueryRow(context.Background(), `SELECT count(), uniqExact(partition) FROM system.parts
				WHERE database = currentDatabase() AND table = 'probe_rollup_1h' AND active`).Scan(&n, &p); err != nil {
				t.Fatal(err)
			}
			return n, p
		}
		if n, p := parts(); n <= p {
			t.Fatalf("probe_rollup_1h has %d parts in %d partitions, want the seed's 2 inserts unmerged", n, p)
		}
		for _, rb := range store.ProbeRollups {
			for _, q := range []string{"SYSTEM START MERGES " + rb.Table, "OPTIMIZE TABLE " + rb.Table + " FINAL"} {
				if err := conn.Exec(context.Background(), q); err != nil {
					t.Fatal(err)
				}
			}
		}
		if n, p := parts(); n != p {
			t.Fatalf("probe_rollup_1h has %d parts in %d partitions after OPTIMIZE FINAL, want 1 each", n, p)
		}
		for _, u := range urls {
			if after := get(u); after != before[u] {
				t.Errorf("%s changed after merging:\n%s\n%s", u, before[u], after)
			}
		}
	})

	t.Run("flows", func(t *testing.T) {
		var top struct {
			Items  []TopItem
			Source string
		}
		c.getJSON("/api/v1/flows/top?range=6h&by=region_pair", &top)
		if len(top.Items) != 3 || top.Items[0].Key != "ap-south → eu-west" || top.Items[0].Bytes != 60*3_000_000 {
			t.Fatalf("top region pairs: %+v", top.Items)
		}
		c.getJSON("/api/v1/flows/top?range=6h&by=src_addr&limit=3", &top)
		if len(top.Items) != 3 || !strings.HasPrefix(top.Items[0].Key, "10.2.0.") {
			t.Fatalf("top talkers: %+v", top.Items)
		}
		c.getJSON("/api/v1/flows/top?range=6h&by=dst_port", &top)
		if top.Items[0].Key != "tcp/22" {
			t.Fatalf("top ports: %+v", top.Items)
		}
		c.getJSON("/api/v1/flows/top?range=6h&by=proto&src_region=eu-west", &top)
		if len(top.Items) != 1 || top.Items[0].Key != "tcp" {
			t.Fatalf("protocols from eu-west: %+v", top.Items)
		}
		var rs RateSeries
		c.getJSON("/api/v1/flows/series?range=6h&step=5m", &rs)
		if len(rs.T) < 55 || rs.BitsPerSec[len(rs.BitsPerSec)/2] != 6_000_000*8/300.0 {
			t.Fatalf("flow series: %d points, mid %v", len(rs.T), rs.BitsPerSec)
		}
		var mx struct{ Cells []FlowCell }
		c.getJSON("/api/v1/flows/matrix?range=6h", &mx)
		if len(mx.Cells) != 3 {
			t.Fatalf("flow matrix: %+v", mx.Cells)
		}
	})

	t.Run("firewall", func(t *testing.T) {
		var top struct{ Items []TopItem }
		c.getJSON("/api/v1/firewall/top?range=6h&by=rule", &top)
		if len(top.Items) != 2 || top.Items[0].Key != "drop-ssh" || top.Items[0].Count != 80 {
			t.Fatalf("top rules (allow events excluded): %+v", top.Items)
		}
		c.getJSON("/api/v1/firewall/top?range=6h&by=src_addr&device=fw-eu-1", &top)
		var sum uint64
		for _, it := range top.Items {
			sum += it.Count
		}
		if sum != 60 {
			t.Fatalf("denies on fw-eu-1: %d, want 60", sum)
		}
		var fs struct {
			T       []int64
			Devices []DeviceRate
		}
		c.getJSON("/api/v1/firewall/series?range=6h&step=30m", &fs)
		if len(fs.Devices) != 2 || fs.Devices[0].Total != 60 || len(fs.Devices[0].Rate) != len(fs.T) {
			t.Fatalf("deny rate per device: %+v", fs.Devices)
		}
	})
}
