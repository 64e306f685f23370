package pipeline

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/meridian-obs/meridian/internal/httpx"
	"github.com/meridian-obs/meridian/pipeline/record"
)

// IngestHandler accepts rows as newline-delimited JSON objects (the field
// names are the table's column names) at POST /api/v1/ingest/{table}, for
// tools that already hold flows, firewall events or probe results. The
// response says how many rows were accepted; a line that does not decode is
// reported with its number and skipped, the others are kept.
func (p *Pipeline) IngestHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var res ingestResult
		var err error
		switch table := r.PathValue("table"); table {
		case "flows":
			res, err = ingestNDJSON(r, p.Flows())
		case "firewall_events":
			res, err = ingestNDJSON(r, p.FirewallEvents())
		case "probe_results":
			res, err = ingestNDJSON(r, p.ProbeResults())
		default:
			httpx.NotFound(w, "unknown table %q: expected flows, firewall_events or probe_results", table)
			return
		}
		if err != nil {
			httpx.Error(w, http.StatusServiceUnavailable, "unavailable", "%v (%d rows accepted before)", err, res.Accepted)
			return
		}
		status := http.StatusOK
		if res.Accepted == 0 && len(res.Errors) > 0 {
			status = http.StatusBadRequest
		}
		httpx.JSON(w, status, res)
	})
}

type ingestResult struct {
	Accepted int         `json:"accepted"`
	Rejected int         `json:"rejected"`
	Errors   []lineError `json:"errors,omitempty"`
}

type lineError struct {
	Line  int    `json:"line"`
	Error string `json:"error"`
}

const ingestChunk = 5000

func ingestNDJSON[T any](r *http.Request, sink record.Sink[T]) (ingestResult, error) {
	var res ingestResult
	sc := bufio.NewScanner(r.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	batch := make([]T, 0, ingestChunk)
	flush := func(ctx context.Context) error {
		if len(batch) == 0 {
			return nil
		}
		if err := sink.Write(ctx, batch); err != nil {
			return err
		}
		res.Accepted += len(batch)
		batch = batch[:0]
		return nil
	}
	line := 0
	for sc.Scan() {
		line++
		b := sc.Bytes()
		if len(b) == 0 {
			continue
		}
		var v T
		if err := json.Unmarshal(b, &v); err != nil {
			res.Rejected++
			if len(res.Errors) < 20 {
				res.Errors = append(res.Errors, lineError{Line: line, Error: err.Error()})
			}
			continue
		}
		batch = append(batch, v)
		if len(batch) == ingestChunk {
			if err := flush(r.Context()); err != nil {
				return res, err
			}
		}
	}
	if err := sc.Err(); err != nil {
		res.Rejected++
		res.Errors = append(res.Errors, lineError{Line: line + 1, Error: fmt.Sprintf("read body: %v", err)})
	}
	return res, flush(r.Context())
}
