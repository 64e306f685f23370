package web

import "net/http"

// Helpers that mount the other components' APIs with the access levels the
// dashboard expects. The components check roles again where they decide
// (runbooks refuses approvals from viewers).

// MountRunbooks mounts the runbooks API (runbooks.Executor.Handler(web.Identity)):
// reads for viewers, starting, approving and cancelling runs for operators
// (the global pause switch is admin-only inside the handler).
func (s *Server) MountRunbooks(h http.Handler) {
	s.Mount("GET /api/v1/runbooks", Viewer, h)
	s.Mount("GET /api/v1/runbooks/", Viewer, h)
	s.Mount("POST /api/v1/runbooks/", Operator, h)
}

// MountSLOs mounts the SLO engine's live status: list is GET /api/v1/slos,
// one is GET /api/v1/slos/{name}.
func (s *Server) MountSLOs(list, one http.Handler) {
	s.Mount("GET /api/v1/slos", Viewer, list)
	s.Mount("GET /api/v1/slos/{name}", Viewer, one)
}

// MountAlerts mounts the current alerts (GET /api/v1/alerts).
func (s *Server) MountAlerts(h http.Handler) {
	s.Mount("GET /api/v1/alerts", Viewer, h)
}
