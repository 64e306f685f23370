package flow

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/meridian-obs/meridian/collectors/flow/flowgen"
	"github.com/meridian-obs/meridian/pipeline/record"
)

// countSink is a real record.Sink that keeps totals (the pipeline itself is
// exercised by the ClickHouse tests).
type countSink struct {
	mu             sync.Mutex
	flows, packets uint64
	types          map[string]uint64
}

func (s *countSink) Write(_ context.Context, rows []record.Flow) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range rows {
		s.flows++
		s.packets += r.Packets
		s.types[r.FlowType]++
	}
	return nil
}

// TestCollectorUDP: datagrams sent over loopback to both listeners (several
// SO_REUSEPORT readers each) all reach the sink by Stop.
func TestCollectorUDP(t *testing.T) {
	sink := &countSink{types: map[string]uint64{}}
	cfg := DefaultConfig()
	cfg.NetFlowListen, cfg.SFlowListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Readers = 3
	cfg.FlushInterval = 20 * time.Millisecond
	reg := prometheus.NewRegistry()
	c, err := New(cfg, Deps{Registry: reg, Sink: sink})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	var want uint64
	for _, k := range []struct{ kind, addr string }{
		{flowgen.NetFlow9, c.NetFlowAddr().String()}, {flowgen.IPFIX, c.NetFlowAddr().String()}, {flowgen.SFlow5, c.SFlowAddr().String()},
	} {
		tot, _, err := flowgen.Send(context.Background(), flowgen.SendConfig{Kind: k.kind, Addr: k.addr, Rate: 50_000, Flows: 5000})
		if err != nil {
			t.Fatal(err)
		}
		want += tot.Flows
	}
	if err := c.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	drops := testutil.ToFloat64(c.m.socketDrops.WithLabelValues("netflow")) + testutil.ToFloat64(c.m.socketDrops.WithLabelValues("sflow"))
	if sink.flows+uint64(drops) < want || drops > 0 {
		t.Fatalf("sink got %d flows of %d (socket drops %v)", sink.flows, want, drops)
	}
	if sink.types[typeNetFlow9] != 5000 || sink.types[typeIPFIX] != 5000 || sink.types[typeSFlow5] != 5000 {
		t.Errorf("per type: %v", sink.types)
	}
	// As root SO_RCVBUFFORCE grants the full size.
	if g := testutil.ToFloat64(c.m.rcvbuf.WithLabelValues("netflow")); os.Geteuid() == 0 && g < float64(cfg.RcvBuf) {
		t.Errorf("rcvbuf granted %v, configured %d", g, cfg.RcvBuf)
	}
}

func TestRxqOvfl(t *testing.T) {
	// A control message as the kernel lays it out: cmsghdr{len 20, SOL_SOCKET, SO_RXQ_OVFL} + uint32.
	oob := make([]byte, 24)
	oob[0] = 20
	oob[8] = 1   // SOL_SOCKET
	oob[12] = 40 // SO_RXQ_OVFL
	oob[16] = 7
	if d, ok := rxqOvfl(oob); !ok || d != 7 {
		t.Fatalf("got %d %v", d, ok)
	}
	if _, ok := rxqOvfl(oob[:10]); ok {
		t.Fatal("short control message accepted")
	}
}
