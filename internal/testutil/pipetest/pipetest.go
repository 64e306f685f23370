// Package pipetest starts the real store and pipeline on the test
// ClickHouse (chtest), for integration tests of the components that write
// through the pipeline.
package pipetest

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meridian-obs/meridian/internal/testutil/chtest"
	"github.com/meridian-obs/meridian/pipeline"
	"github.com/meridian-obs/meridian/pipeline/store"
)

// Start returns a started store and pipeline on a fresh test database, with
// small batches flushed every 50 ms, and the registry their metrics are in.
// Both stop at cleanup (stopping the pipeline earlier, to flush, is fine).
func Start(t testing.TB, flushRows int) (*store.Store, *pipeline.Pipeline, *prometheus.Registry) {
	t.Helper()
	scfg := chtest.Config(t)
	reg := prometheus.NewRegistry()
	st, err := store.New(scfg, store.Deps{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := st.Start(ctx); err != nil {
		chtest.Unavailable(t, "store start: %v", err)
	}
	t.Cleanup(func() { _ = st.Stop(context.Background()) })
	if st.Conn() == nil {
		t.Fatal("store did not connect and migrate (see its warning above)")
	}
	pcfg := pipeline.DefaultConfig()
	pcfg.FlushRows = flushRows
	pcfg.QueueRows = max(pcfg.QueueRows, flushRows)
	pcfg.FlushInterval = 50 * time.Millisecond
	pcfg.SpoolDir = t.TempDir()
	p, err := pipeline.New(pcfg, pipeline.Deps{Store: st, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop(context.Background()) })
	return st, p, reg
}
