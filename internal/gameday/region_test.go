package gameday

import (
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseFault(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Fault
		err  bool
	}{
		{in: "outage", want: Fault{Outage: true}},
		{in: "loss:30%", want: Fault{Loss: 0.3}},
		{in: "loss:0.25", want: Fault{Loss: 0.25}},
		{in: "loss:100%", want: Fault{Loss: 1}},
		{in: "latency:200ms", want: Fault{Latency: 200 * time.Millisecond}},
		{in: "loss:10%,latency:50ms", want: Fault{Loss: 0.1, Latency: 50 * time.Millisecond}},
		{in: "", err: true},
		{in: "loss:0", err: true},
		{in: "loss:150%", err: true},
		{in: "loss:x", err: true},
		{in: "latency:-1s", err: true},
		{in: "latency:2m", err: true},
		{in: "outage:5", err: true},
		{in: "outage,loss:5%", err: true},
		{in: "flood", err: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseFault(tc.in)
			if (err != nil) != tc.err {
				t.Fatalf("ParseFault(%q) error = %v, want error %t", tc.in, err, tc.err)
			}
			if err == nil {
				if d := cmp.Diff(tc.want, got); d != "" {
					t.Errorf("ParseFault(%q) (-want +got):\n%s", tc.in, d)
				}
				if back, err := ParseFault(got.String()); err != nil || back != got {
					t.Errorf("String() = %q does not parse back: %v %v", got.String(), back, err)
				}
			}
		})
	}
}

// echo sends n datagrams to the region and counts the answers and their
// slowest RTT.
func echo(t *testing.T, r *Region, n int) (answered int, slowest time.Duration) {
	t.Helper()
	c, err := net.Dial("udp", r.UDPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 64)
	for i := 0; i < n; i++ {
		start := time.Now()
		if _, err := c.Write([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if m, err := c.Read(buf); err == nil && m == 1 && buf[0] == byte(i) {
			answered++
			slowest = max(slowest, time.Since(start))
		}
	}
	return answered, slowest
}

func TestRegionFaults(t *testing.T) {
	r := newRegion(9, "test")
	r.Addr = "127.0.9.1"
	if err := r.start(0, 0); err != nil {
		t.Skipf("cannot listen on %s: %v", r.Addr, err)
	}
	defer r.stop()

	if got, _ := echo(t, r, 20); got != 20 {
		t.Fatalf("healthy: %d/20 answered", got)
	}
	r.SetFault(Fault{Outage: true})
	if got, _ := echo(t, r, 10); got != 0 {
		t.Errorf("outage: %d/10 answered, want 0", got)
	}
	resp, err := http.Get(r.HTTPURL())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("outage: HTTP %d, want 503", resp.StatusCode)
	}
	r.SetFault(Fault{Loss: 0.5})
	if got, _ := echo(t, r, 200); got < 60 || got > 140 {
		t.Errorf("50%% loss: %d/200 answered (binomial; expected 100 ± 40)", got)
	}
	r.SetFault(Fault{Latency: 100 * time.Millisecond})
	got, slowest := echo(t, r, 3)
	if got != 3 || slowest < 100*time.Millisecond {
		t.Errorf("latency 100ms: %d/3 answered, slowest %s; want all, each ≥ 100ms", got, slowest)
	}
	// Removing the fault leaves the region as it was.
	r.SetFault(Fault{})
	if got, _ := echo(t, r, 20); got != 20 {
		t.Errorf("after the fault: %d/20 answered", got)
	}
	resp, err = http.Get(r.HTTPURL())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "edge test ok\n" {
		t.Errorf("after the fault: HTTP %d %q", resp.StatusCode, body)
	}
}
