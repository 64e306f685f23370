package runbooks

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
)

// AuditRecord is one decision or event, as stored in audit_log.
type AuditRecord struct {
	Time     time.Time `json:"time"`
	Seq      uint64    `json:"seq"`
	RunID    string    `json:"run_id"`
	Runbook  string    `json:"runbook"`
	Group    string    `json:"group"`
	Kind     string    `json:"kind"`     // trigger, guardrail, approval, action, undo, verify, escalate, state, pause
	Decision string    `json:"decision"` // e.g. allowed, blocked, ok, failed, planned
	Actor    string    `json:"actor"`    // "meridian" or the operator
	Detail   string    `json:"detail"`
	DryRun   bool      `json:"dry_run"`
}

// runRow is one state of a run, as stored in runbook_runs.
type runRow struct {
	RunID, Runbook, Group, SLO, Fingerprint, Origin, RequestedBy, State, Reason string
	DryRun                                                                      bool
	Labels, Params                                                              string
	CreatedAt, UpdatedAt                                                        time.Time
	Version                                                                     uint64
}

// auditWriter stores records in ClickHouse without losing them when the
// server is briefly away: records wait in a bounded buffer and are retried
// with backoff; only when the buffer is full is the oldest record dropped
// (and counted).
type auditWriter struct {
	conn func() driver.Conn
	// memoryOnly: no ClickHouse configured; records live only in the runs.
	memoryOnly bool
	log        *slog.Logger
	limit      int

	mu      sync.Mutex
	audit   []AuditRecord
	runs    []runRow
	kick    chan struct{}
	stop    chan struct{}
	done    chan struct{}
	timeout time.Duration

	written, dropped, failures *prometheus.CounterVec
	pending                    prometheus.Gauge

	// insertAudit and insertRuns are replaced by tests to inject failures.
	insertAudit func(ctx context.Context, c driver.Conn, recs []AuditRecord) error
	insertRuns  func(ctx context.Context, c driver.Conn, rows []runRow) error
}

func newAuditWriter(conn func() driver.Conn, limit int, log *slog.Logger, m *metrics) *auditWriter {
	w := &auditWriter{conn: conn, log: log, limit: limit, kick: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{}), timeout: 10 * time.Second,
		written: m.auditWritten, dropped: m.auditDropped, failures: m.auditFailures, pending: m.auditPending}
	w.insertAudit, w.insertRuns = insertAudit, insertRuns
	return w
}

func (w *auditWriter) addAudit(r AuditRecord) {
	if w.memoryOnly {
		return
	}
	w.mu.Lock()
	if len(w.audit)+len(w.runs) >= w.limit && len(w.audit) > 0 {
		w.audit = w.audit[1:]
		w.dropped.WithLabelValues("audit_log").Inc()
	}
	w.audit = append(w.audit, r)
	w.pending.Set(float64(len(w.audit) + len(w.runs)))
	w.mu.Unlock()
	w.poke()
}

func (w *auditWriter) addRun(r runRow) {
	if w.memoryOnly {
		return
	}
	w.mu.Lock()
	if len(w.audit)+len(w.runs) >= w.limit && len(w.runs) > 0 {
		w.runs = w.runs[1:]
		w.dropped.WithLabelValues("runbook_runs").Inc()
	}
	w.runs = append(w.runs, r)
	w.pending.Set(float64(len(w.audit) + len(w.runs)))
	w.mu.Unlock()
	w.poke()
}

func (w *auditWriter) poke() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

func (w *auditWriter) start() {
	go func() {
		defer close(w.done)
		backoff := 200 * time.Millisecond
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-w.kick:
			case <-tick.C:
			}
			if err := w.flush(context.Background()); err != nil {
				w.log.Warn("audit log: ClickHouse insert failed; keeping the records and retrying", "err", err, "retry_in", backoff)
				select {
				case <-w.stop:
					return
				case <-time.After(backoff):
				}
				backoff = min(backoff*2, 10*time.Second)
				w.poke()
				continue
			}
			backoff = 200 * time.Millisecond
		}
	}()
}

// flush writes what is buffered; records stay buffered on failure.
func (w *auditWriter) flush(ctx context.Context) error {
	w.mu.Lock()
	audit, runs := w.audit, w.runs
	w.mu.Unlock()
	if len(audit) == 0 && len(runs) == 0 {
		return nil
	}
	c := w.conn()
	if c == nil {
		w.failures.WithLabelValues("not_connected").Inc()
		return fmt.Errorf("clickhouse is not connected")
	}
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	if len(audit) > 0 {
		if err := w.insertAudit(ctx, c, audit); err != nil {
			w.failures.WithLabelValues("insert").Inc()
			return fmt.Errorf("insert audit_log: %w", err)
		}
		w.written.WithLabelValues("audit_log").Add(float64(len(audit)))
	}
	if len(runs) > 0 {
		if err := w.insertRuns(ctx, c, runs); err != nil {
			w.failures.WithLabelValues("insert").Inc()
			w.remove(len(audit), 0)
			return fmt.Errorf("insert runbook_runs: %w", err)
		}
		w.written.WithLabelValues("runbook_runs").Add(float64(len(runs)))
	}
	w.remove(len(audit), len(runs))
	return nil
}

// remove drops the first na/nr records, which were written. Records dropped
// for space meanwhile shift the buffers, so it removes at most what is left
// of the written prefix.
func (w *auditWriter) remove(na, nr int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.audit = w.audit[min(na, len(w.audit)):]
	w.runs = w.runs[min(nr, len(w.runs)):]
	w.pending.Set(float64(len(w.audit) + len(w.runs)))
}

// close stops the loop and makes a last attempt within ctx.
func (w *auditWriter) close(ctx context.Context) error {
	close(w.stop)
	<-w.done
	for {
		err := w.flush(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			w.mu.Lock()
			n := len(w.audit) + len(w.runs)
			w.mu.Unlock()
			return fmt.Errorf("audit log: %d records not written at stop: %w", n, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

func insertAudit(ctx context.Context, c driver.Conn, recs []AuditRecord) error {
	b, err := c.PrepareBatch(ctx, "INSERT INTO audit_log (time, seq, component, run_id, runbook, group_key, kind, decision, actor, detail, dry_run)")
	if err != nil {
		return err
	}
	for _, r := range recs {
		if err := b.Append(r.Time.UTC(), r.Seq, "runbooks", r.RunID, r.Runbook, r.Group, r.Kind, r.Decision, r.Actor, r.Detail, b2u(r.DryRun)); err != nil {
			b.Abort()
			return err
		}
	}
	return b.Send()
}

func insertRuns(ctx context.Context, c driver.Conn, rows []runRow) error {
	b, err := c.PrepareBatch(ctx, "INSERT INTO runbook_runs (run_id, runbook, group_key, slo, fingerprint, origin, requested_by, state, reason, dry_run, labels, params, created_at, updated_at, version)")
	if err != nil {
		return err
	}
	for _, r := range rows {
		if err := b.Append(r.RunID, r.Runbook, r.Group, r.SLO, r.Fingerprint, r.Origin, r.RequestedBy, r.State, r.Reason,
			b2u(r.DryRun), r.Labels, r.Params, r.CreatedAt.UTC(), r.UpdatedAt.UTC(), r.Version); err != nil {
			b.Abort()
			return err
		}
	}
	return b.Send()
}
