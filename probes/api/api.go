// Package api holds the JSON messages between meridian-agent and the
// server's agent endpoints (mounted under /api/v1/agent/). It imports no
// storage driver: the agent binary links it.
package api

import (
	"github.com/meridian-obs/meridian/probes"
)

// Paths under the server's base URL.
const (
	PathRegister    = "/api/v1/agent/register"
	PathAssignments = "/api/v1/agent/assignments"
	PathResults     = "/api/v1/agent/results"
	PathAgents      = "/api/v1/agents"

	// HeaderBatchID carries a results batch's id: "<instance>:<seq>", where
	// instance is the agent's spool identity and seq increases by one per
	// batch. The server keeps, per agent, the last delivered seq of the
	// instance and acknowledges anything at or below it as a duplicate.
	HeaderBatchID = "X-Meridian-Batch-Id"

	// CodeNotRegistered is the error code of a 409 answer: register again.
	CodeNotRegistered = "not_registered"
)

// Register is the body of POST register. The agent's identity comes from
// its token; Name must match it.
type Register struct {
	Name    string            `json:"name"`
	Region  string            `json:"region"`
	Site    string            `json:"site"`
	Labels  map[string]string `json:"labels,omitempty"`
	Version string            `json:"version,omitempty"`
}

// Assignments is the answer of GET assignments (and of register).
type Assignments struct {
	Agent  string         `json:"agent"`
	Checks []probes.Check `json:"checks"`
	// RefreshNs is how often the agent should ask again.
	RefreshNs int64 `json:"refresh_ns"`
}

// Results is the body of POST results (gzip-compressed when
// Content-Encoding: gzip).
type Results struct {
	BatchID string          `json:"batch_id"`
	Results []probes.Result `json:"results"`
}

// ResultsAck answers POST results.
type ResultsAck struct {
	Accepted  int  `json:"accepted"`
	Dropped   int  `json:"dropped"`
	Duplicate bool `json:"duplicate"`
	// Reasons counts dropped results by reason (unknown_check, malformed, …).
	Reasons map[string]int `json:"reasons,omitempty"`
}
