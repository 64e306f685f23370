package gameday

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/meridian-obs/meridian/alerting"
	"github.com/meridian-obs/meridian/runbooks"
)

type fakeAlerts struct{ fn alerting.Subscriber }

func (f *fakeAlerts) Subscribe(s alerting.Subscriber) { f.fn = s }

func newExecutor(t *testing.T, n *Network) *runbooks.Executor {
	t.Helper()
	st := &runbooks.StaticStatus{All: map[string][]string{SLOName: RegionNames}}
	ex, err := runbooks.New(n.RunbooksConfig(), runbooks.Deps{Log: testLog(t), Status: st})
	must(t, err)
	must(t, ex.Start(context.Background()))
	t.Cleanup(func() { _ = ex.Stop(context.Background()) })
	return ex
}

// A drill refuses live runbooks unless allowed; Ctrl-C (a cancelled
// context) removes the fault and leaves the network as it was.
func TestDrillRefusesLiveAndStopsCleanly(t *testing.T) {
	n := startNetwork(t, false)
	ex := newExecutor(t, n)
	fa := &fakeAlerts{}
	r := NewRunner(n, fa, ex, nil, false, testLog(t))
	if fa.fn == nil {
		t.Fatal("the runner did not subscribe to alerts")
	}
	if live := r.LiveRunbooks("eu"); len(live) != 1 || live[0] != RunbookName {
		t.Fatalf("LiveRunbooks(eu) = %v, want [%s]", live, RunbookName)
	}
	_, err := r.Run(context.Background(), Drill{Region: "eu", Fault: Fault{Outage: true}})
	if !errors.Is(err, ErrLive) {
		t.Fatalf("drill against live runbooks: err = %v, want ErrLive", err)
	}
	if _, err := r.Run(context.Background(), Drill{Region: "mars", Fault: Fault{Outage: true}, AllowLive: true}); err == nil {
		t.Error("a drill on an unknown region ran")
	}
	n.waitRoutes(t, ex)
	before, err := n.Snapshot(context.Background())
	must(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	faultSeen := make(chan Fault, 1)
	go func() {
		// Ctrl-C once the fault is in place (the drill first reads the
		// network, which takes a while on a busy machine).
		for n.Region("us").Fault().Healthy() {
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(time.Second)
		faultSeen <- n.Region("us").Fault()
		cancel()
	}()
	start := time.Now()
	res, err := r.Run(ctx, Drill{Region: "us", Fault: Fault{Loss: 1}, Hold: time.Minute, AllowLive: true})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("stopped drill: err = %v, want context.Canceled", err)
	}
	if took := time.Since(start); took > 60*time.Second {
		t.Errorf("the drill took %s to stop", took)
	}
	if f := <-faultSeen; f.Loss != 1 {
		t.Errorf("during the drill the region's fault was %v, want loss:100%%", f)
	}
	if res == nil || res.Outcome != OutcomeAborted || res.Region != "us" || res.Detect != nil {
		t.Fatalf("result = %+v, want an aborted drill of us without detection", res)
	}
	if f := n.Region("us").Fault(); !f.Healthy() {
		t.Errorf("after the stop the region still has fault %v", f)
	}
	if got, _ := echo(t, n.Region("us"), 10); got != 10 {
		t.Errorf("after the stop: %d/10 echoes answered", got)
	}
	after, err := n.Snapshot(context.Background())
	must(t, err)
	if d := before.Diff(after); len(d) > 0 {
		t.Errorf("the network changed: %v", d)
	}
	kinds := map[string]bool{}
	for _, e := range res.Events {
		kinds[e.Kind] = true
	}
	for _, k := range []string{EvFaultInjected, EvFaultRemoved, EvAborted} {
		if !kinds[k] {
			t.Errorf("timeline has no %s: %+v", k, res.Events)
		}
	}
}
