package runbooks

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/meridian-obs/meridian/internal/testutil/chtest"
)

// TestAuditInClickHouse runs a guarded run end to end and reads its
// decisions back from audit_log and runbook_runs; ClickHouse refuses the
// first inserts (and is "not connected" for a while) and nothing is lost.
func TestAuditInClickHouse(t *testing.T) {
	conn, _ := chtest.DB(t)
	rc := newReceiver(t)
	var connected atomic.Bool
	var failInserts atomic.Int32
	failInserts.Store(2)
	f := newFixture(t, webhookConfig(t, rc), newStatus([]string{"eu", "us"}, "eu"), hookYAML("cooldown: 1h"), func(d *Deps) {
		d.ClickHouse = func() driver.Conn {
			if connected.Load() {
				return conn
			}
			return nil
		}
	})
	real := f.e.audit.insertAudit
	f.e.audit.insertAudit = func(ctx context.Context, c driver.Conn, recs []AuditRecord) error {
		if failInserts.Add(-1) >= 0 {
			return errors.New("injected: server went away")
		}
		return real(ctx, c, recs)
	}
	id := f.fire(t, "edge-notify", "fp1", labels("eu"))
	f.wait(t, id, StateSucceeded)
	blocked := f.fire(t, "edge-notify", "fp2", labels("eu"))
	f.wait(t, blocked, StateBlocked)
	time.Sleep(300 * time.Millisecond) // the writer tries and fails meanwhile
	connected.Store(true)
	run, _ := f.e.GetRun(id)
	brun, _ := f.e.GetRun(blocked)
	want := uint64(len(run.Audit) + len(brun.Audit))
	ctx := waitCtx(t, 60*time.Second)
	var n uint64
	for {
		must(t, conn.QueryRow(ctx, "SELECT count() FROM audit_log").Scan(&n))
		if n >= want || ctx.Err() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n != want {
		t.Fatalf("audit_log has %d rows, want %d", n, want)
	}
	if got := counter(t, f.e.m.auditFailures.WithLabelValues("insert")); got < 2 {
		t.Errorf("insert failures counted %v, want ≥ 2", got)
	}
	if got := counter(t, f.e.m.auditFailures.WithLabelValues("not_connected")); got < 1 {
		t.Errorf("not_connected counted %v, want ≥ 1", got)
	}
	var detail string
	must(t, conn.QueryRow(ctx, "SELECT detail FROM audit_log WHERE run_id = ? AND kind = 'guardrail' AND decision = 'blocked'", blocked).Scan(&detail))
	if detail[:9] != "cooldown:" {
		t.Errorf("blocked detail %q", detail)
	}
	var state string
	for ctx.Err() == nil {
		err := conn.QueryRow(ctx, "SELECT argMax(state, version) FROM runbook_runs WHERE run_id = ?", id).Scan(&state)
		if err == nil && state == StateSucceeded {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if state != StateSucceeded {
		t.Errorf("runbook_runs state %q, want succeeded", state)
	}
	var secretRows uint64
	must(t, conn.QueryRow(ctx, "SELECT count() FROM audit_log WHERE position(detail, ?) > 0", rc.secret[6:]).Scan(&secretRows))
	if secretRows != 0 {
		t.Error("webhook secret in audit_log")
	}
}

func TestAuditBufferBounded(t *testing.T) {
	m, err := newMetrics(nil)
	must(t, err)
	w := newAuditWriter(func() driver.Conn { return nil }, 3, discardLog(), m)
	for i := 0; i < 5; i++ {
		w.addAudit(AuditRecord{Seq: uint64(i)})
	}
	if len(w.audit) != 3 || w.audit[0].Seq != 2 {
		t.Errorf("buffer %+v, want the newest 3", w.audit)
	}
	if got := counter(t, m.auditDropped.WithLabelValues("audit_log")); got != 2 {
		t.Errorf("dropped %v, want 2", got)
	}
}
