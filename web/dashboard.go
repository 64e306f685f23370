package web

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"

	"github.com/meridian-obs/meridian/internal/httpx"
)

// The dashboard is a single page (ui/index.html, ui/app.js) that reads only
// the JSON API; charts are drawn by uPlot (npm package uplot, its built file
// copied into ui/vendor by `make assets`, see ui/package.json). Everything is
// embedded: the dashboard works with no internet.
//
//go:embed ui/index.html ui/app.js ui/app.css ui/vendor/uPlot.iife.min.js ui/vendor/uPlot.min.css
var uiFS embed.FS

// contentSecurityPolicy keeps every script, style and request on this
// origin.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

func (s *Server) mountDashboard() {
	sub, _ := fs.Sub(uiFS, "ui")
	files := http.FileServerFS(sub)
	index, _ := fs.ReadFile(sub, "index.html")
	page := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", contentSecurityPolicy)
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("Referrer-Policy", "same-origin")
		_, _ = w.Write(index)
	}
	// The page itself holds no data and no secret: it asks /api/v1/me and
	// shows the login form on 401.
	s.Mount("GET /{$}", Public, http.HandlerFunc(page))
	s.Mount("GET /ui/", Public, http.StripPrefix("/ui/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "" || strings.HasSuffix(r.URL.Path, "/") || r.URL.Path == "index.html" {
			httpx.NotFound(w, "no asset %s", r.URL.Path)
			return
		}
		if _, err := fs.Stat(sub, r.URL.Path); err != nil {
			httpx.NotFound(w, "no asset %s", r.URL.Path)
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})))
	s.Mount("/", Public, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpx.NotFound(w, "no route %s %s", r.Method, r.URL.Path)
	}))
}
