package gameday

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/meridian-obs/meridian/internal/testutil/chtest"
	"github.com/meridian-obs/meridian/runbooks"
)

func startNetwork(t *testing.T, dryRun bool) *Network {
	t.Helper()
	n, err := Start(context.Background(), Options{Dir: t.TempDir(), DryRun: dryRun, Log: testLog(t)})
	if errors.Is(err, ErrMissingPeer) {
		chtest.Unavailable(t, "%v", err)
	}
	must(t, err)
	t.Cleanup(n.Stop)
	return n
}

func (n *Network) waitRoutes(t *testing.T, ex *runbooks.Executor) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		ok := true
		for _, p := range n.Prefixes {
			if rib, _ := n.BGP.RIB(context.Background(), p); rib == "" {
				ok = false
			}
		}
		if ok {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	st, _ := ex.Speaker().PeerStates(context.Background())
	t.Fatalf("the peer never received the region prefixes; speaker peers %v\ngobgpd:\n%s", st, n.BGP.proc.out.String())
}

// The generated runbook, run live by the real executor, fails eu over on
// BIND and the BGP peer, and restores both when the alert resolves.
func TestNetworkRunbookFailoverAndRestore(t *testing.T) {
	n := startNetwork(t, false)
	cfg := n.RunbooksConfig()
	st := &runbooks.StaticStatus{All: map[string][]string{SLOName: RegionNames}, Burning: map[string]bool{SLOName + "/eu": true}}
	ex, err := runbooks.New(cfg, runbooks.Deps{Log: testLog(t), Status: st})
	must(t, err)
	must(t, ex.Start(context.Background()))
	t.Cleanup(func() { _ = ex.Stop(context.Background()) })
	n.waitRoutes(t, ex)
	before, err := n.Snapshot(context.Background())
	must(t, err)

	labels := map[string]string{"alertname": "SLOErrorBudgetBurn", "slo": SLOName, "region": "eu", "severity": "page", "long_window": "1h", "short_window": "5m"}
	ex.HandleAlert(runbooks.Alert{Labels: labels, Status: runbooks.StatusFiring, StartsAt: time.Now(), Fingerprint: "fp-eu"})
	id, ok := ex.RunForAlert(RunbookName, "fp-eu")
	if !ok {
		t.Fatalf("the alert started no %s run; runbooks: %d", RunbookName, len(ex.Runbooks()))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	run, err := ex.WaitRun(ctx, id, runbooks.StateSucceeded, runbooks.StateRolledBack, runbooks.StateBlocked, runbooks.StateRollbackFailed)
	must(t, err)
	if run.State != runbooks.StateSucceeded {
		t.Fatalf("run %s: %s (%s) audit %+v", id, run.State, run.Reason, run.Audit)
	}
	// The first healthy peer in name order is ap.
	if recs, _ := n.BIND.Records("edge-eu"); strings.Join(recs, ",") != "30 "+n.Region("ap").Addr {
		t.Errorf("edge-eu after the failover = %v, want [30 %s]", recs, n.Region("ap").Addr)
	}
	deadline := time.Now().Add(10 * time.Second)
	var rib string
	for time.Now().Before(deadline) {
		if rib, _ = n.BGP.RIB(context.Background(), n.Prefixes["eu"]); strings.Contains(rib, "65001 65001 65001 65001") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(rib, "65001 65001 65001 65001") || !strings.Contains(rib, "65001:666") {
		t.Errorf("peer route for %s = %q, want the AS prepended 3 times and community 65001:666", n.Prefixes["eu"], rib)
	}
	mid, _ := n.Snapshot(context.Background())
	for _, r := range []string{"us", "ap"} {
		for _, k := range []string{"dns/" + r, "bgp/" + r} {
			if mid[k] != before[k] {
				t.Errorf("%s changed: %q → %q", k, before[k], mid[k])
			}
		}
	}

	ex.HandleAlert(runbooks.Alert{Labels: labels, Status: runbooks.StatusResolved, EndsAt: time.Now(), Fingerprint: "fp-eu"})
	run, err = ex.WaitRun(ctx, id, runbooks.StateRestored, runbooks.StateRollbackFailed)
	must(t, err)
	if run.State != runbooks.StateRestored {
		t.Fatalf("restore: %s (%s)", run.State, run.Reason)
	}
	deadline = time.Now().Add(10 * time.Second)
	var diff []string
	for time.Now().Before(deadline) {
		after, err := n.Snapshot(context.Background())
		must(t, err)
		if diff = before.Diff(after); len(diff) == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(diff) > 0 {
		t.Errorf("after the restore the network differs: %v", diff)
	}
}
