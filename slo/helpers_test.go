package slo

import (
	"context"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meridian-obs/meridian/internal/testutil/chtest"
)

func TestMain(m *testing.M) { chtest.Main(m) }

type connOf struct{ c driver.Conn }

func (c connOf) Conn() driver.Conn { return c.c }

// probe is one synthetic probe round.
type probe struct {
	t      time.Time
	region string
	check  string
	sent   uint32
	rtts   []uint32
	jitter float64
	mos    float64
}

func insertProbes(t testing.TB, conn driver.Conn, ps []probe) {
	t.Helper()
	ctx := context.Background()
	for len(ps) > 0 {
		n := min(len(ps), 50000)
		b, err := conn.PrepareBatch(ctx, "INSERT INTO probe_results (time, agent, src_region, check_name, probe_type, target, target_region, sent, received, rtts_us, jitter_ms, mos)")
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps[:n] {
			rtts := p.rtts
			if rtts == nil {
				rtts = []uint32{}
			}
			check := p.check
			if check == "" {
				check = "edge"
			}
			if err := b.Append(p.t, "agent-1", "src", check, "icmp", "t", p.region, p.sent, uint32(len(rtts)), rtts, p.jitter, p.mos); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Send(); err != nil {
			t.Fatal(err)
		}
		ps = ps[n:]
	}
}

type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time { return c.t }

func newEngine(t testing.TB, conn driver.Conn, clock *fakeClock, specs ...*Spec) (*Engine, *prometheus.Registry) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.BackfillBudget = time.Minute
	reg := prometheus.NewRegistry()
	e, err := New(cfg, Deps{Registry: reg, Store: connOf{conn}, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range specs {
		s.ApplyDefaults()
	}
	if err := e.SetSpecs(map[string][]*Spec{"test.yaml": specs}, nil); err != nil {
		t.Fatal(err)
	}
	return e, reg
}

func mustParse(t testing.TB, yml string) []*Spec {
	t.Helper()
	specs, err := Parse("test.yaml", []byte(yml))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return specs
}
