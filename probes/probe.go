// Package probes holds Meridian's synthetic probe types (icmp, tcp, udp,
// http, dns) behind one Prober interface, the round Result they return and
// its mapping to record.ProbeResult. The scheduler, agent daemon and server
// side live in sub-packages (sched, agent, server); the shared-socket ICMP
// engine for large target sets in icmpengine; the statistics in stats.
package probes

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meridian-obs/meridian/pipeline/record"
	"github.com/meridian-obs/meridian/probes/stats"
)

// Probe types.
const (
	TypeICMP = "icmp"
	TypeTCP  = "tcp"
	TypeUDP  = "udp"
	TypeHTTP = "http"
	TypeDNS  = "dns"
)

// Types lists the probe types.
var Types = []string{TypeICMP, TypeTCP, TypeUDP, TypeHTTP, TypeDNS}

// Check is one assignment: what to probe, how often and how.
type Check struct {
	Name     string            `json:"name"`
	Type     string            `json:"type"`
	Target   string            `json:"target"`
	Count    int               `json:"count"`       // packets or attempts per round
	Spacing  time.Duration     `json:"spacing_ns"`  // between packets of a round
	Timeout  time.Duration     `json:"timeout_ns"`  // wait for the last answer
	Interval time.Duration     `json:"interval_ns"` // between rounds
	Params   map[string]string `json:"params,omitempty"`
}

// Param returns a parameter or def.
func (c Check) Param(k, def string) string {
	if v, ok := c.Params[k]; ok && v != "" {
		return v
	}
	return def
}

// WithDefaults fills unset count, spacing, timeout and interval.
func (c Check) WithDefaults() Check {
	if c.Count <= 0 {
		if c.Type == TypeHTTP || c.Type == TypeDNS || c.Type == TypeTCP {
			c.Count = 1
		} else {
			c.Count = 10
		}
	}
	if c.Spacing <= 0 {
		c.Spacing = 100 * time.Millisecond
	}
	if c.Timeout <= 0 {
		c.Timeout = 2 * time.Second
	}
	if c.Interval <= 0 {
		c.Interval = time.Minute
	}
	return c
}

// Phase is a probe-specific timing (ms) or figure.
type Phase struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
}

// Result is one round. Its JSON form is the `meridian-agent probe --json`
// output and the agent → server wire format.
type Result struct {
	Check      string    `json:"check,omitempty"`
	Type       string    `json:"type"`
	Target     string    `json:"target"`
	TargetAddr string    `json:"target_addr,omitempty"`
	Time       time.Time `json:"time"`

	Sent            int      `json:"sent"`
	Received        int      `json:"received"`
	Duplicates      int      `json:"duplicates"`
	Reordered       int      `json:"reordered"`
	LossRatio       float64  `json:"loss_ratio"`
	RTTMinMs        float64  `json:"rtt_min_ms"`
	RTTAvgMs        float64  `json:"rtt_avg_ms"`
	RTTMaxMs        float64  `json:"rtt_max_ms"`
	RTTP50Ms        float64  `json:"rtt_p50_ms"`
	RTTP95Ms        float64  `json:"rtt_p95_ms"`
	RTTP99Ms        float64  `json:"rtt_p99_ms"`
	RTTStddevMs     float64  `json:"rtt_stddev_ms"`
	JitterMs        float64  `json:"jitter_ms"`
	JitterRFC3550Ms float64  `json:"jitter_rfc3550_ms"`
	MOS             float64  `json:"mos"`
	RTTsUs          []uint32 `json:"rtts_us"`

	Status uint16  `json:"status,omitempty"`
	Error  string  `json:"error,omitempty"`
	Phases []Phase `json:"phases,omitempty"`
}

// SetStats copies a statistics summary into r.
func (r *Result) SetStats(s stats.Summary) {
	r.Sent, r.Received, r.Duplicates, r.Reordered = s.Sent, s.Received, s.Duplicates, s.Reordered
	r.LossRatio = s.LossRatio
	r.RTTMinMs, r.RTTAvgMs, r.RTTMaxMs = s.MinMs, s.AvgMs, s.MaxMs
	r.RTTP50Ms, r.RTTP95Ms, r.RTTP99Ms = s.P50Ms, s.P95Ms, s.P99Ms
	r.RTTStddevMs, r.JitterMs, r.JitterRFC3550Ms, r.MOS = s.StddevMs, s.JitterMs, s.JitterRFC3550Ms, s.MOS
	r.RTTsUs = s.RTTsUs
}

// Phase returns the value of a named phase and whether it is present.
func (r Result) Phase(name string) (float64, bool) {
	for _, p := range r.Phases {
		if p.Name == name {
			return p.Value, true
		}
	}
	return 0, false
}

// Source identifies who ran the round and where the target is; the server
// fills it from the agent's registration and the check's configuration,
// never from the agent's payload.
type Source struct {
	Agent, Region, Site      string
	TargetRegion, TargetSite string
}

// ToRecord maps a round to the probe_results row.
func (r Result) ToRecord(src Source) record.ProbeResult {
	addr, _ := netip.ParseAddr(r.TargetAddr)
	pr := record.ProbeResult{
		Time: r.Time.UTC(), Agent: src.Agent, SrcRegion: src.Region, SrcSite: src.Site,
		Check: r.Check, ProbeType: r.Type, Target: r.Target, TargetAddr: addr,
		TargetRegion: src.TargetRegion, TargetSite: src.TargetSite,
		Sent: clampU32(r.Sent), Received: clampU32(r.Received), Duplicates: clampU32(r.Duplicates),
		Reordered: clampU32(r.Reordered), LossRatio: r.LossRatio,
		RTTMinMs: r.RTTMinMs, RTTAvgMs: r.RTTAvgMs, RTTMaxMs: r.RTTMaxMs,
		RTTP50Ms: r.RTTP50Ms, RTTP95Ms: r.RTTP95Ms, RTTP99Ms: r.RTTP99Ms, RTTStddevMs: r.RTTStddevMs,
		JitterMs: r.JitterMs, JitterRFC3550Ms: r.JitterRFC3550Ms, MOS: r.MOS,
		RTTsUs: append([]uint32{}, r.RTTsUs...), Status: r.Status, Error: r.Error,
	}
	for _, p := range r.Phases {
		pr.PhaseNames = append(pr.PhaseNames, p.Name)
		pr.PhaseValues = append(pr.PhaseValues, p.Value)
	}
	return pr
}

func clampU32(v int) uint32 {
	if v < 0 {
		return 0
	}
	if v > 1<<32-1 {
		return 1<<32 - 1
	}
	return uint32(v)
}

// Prober runs one round of a check. It never panics on bad input: failures
// become a Result with Error set (and every packet counted as lost).
type Prober interface {
	Probe(ctx context.Context, c Check) Result
}

// Metrics counts probe errors by type and reason
// (meridian_probes_errors_total). A nil *Metrics counts nothing.
type Metrics struct {
	errors *prometheus.CounterVec
}

// NewMetrics registers the probe metrics on reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{errors: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meridian_probes_errors_total",
		Help: "Probe errors and discarded answers by probe type and reason (timeout, refused, dns, foreign_reply, malformed_reply, status, body, rcode, answer, …).",
	}, []string{"type", "reason"})}
	if reg != nil {
		reg.MustRegister(m.errors)
	}
	return m
}

// Count adds n to the error counter.
func (m *Metrics) Count(typ, reason string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.errors.WithLabelValues(typ, reason).Add(float64(n))
}

// Errors returns the counter vector (for tests and dashboards).
func (m *Metrics) Errors() *prometheus.CounterVec { return m.errors }

// New returns the prober of a type. ICMP rounds use pro-bing here; the agent
// daemon routes them to the shared-socket engine instead (see icmpengine).
func New(typ string, m *Metrics) (Prober, error) {
	switch typ {
	case TypeICMP:
		return &ICMP{Metrics: m}, nil
	case TypeTCP:
		return &TCP{Metrics: m}, nil
	case TypeUDP:
		return &UDP{Metrics: m}, nil
	case TypeHTTP:
		return &HTTP{Metrics: m}, nil
	case TypeDNS:
		return &DNS{Metrics: m}, nil
	}
	return nil, fmt.Errorf("unknown probe type %q (expected one of %s)", typ, strings.Join(Types, ", "))
}

// finish computes the statistics of rtts (send order) into a Result.
func finish(c Check, start time.Time, addr string, sent int, rtts []time.Duration, dups, reord int, errReason string) Result {
	r := Result{Check: c.Name, Type: c.Type, Target: c.Target, TargetAddr: addr, Time: start, Error: errReason}
	r.SetStats(stats.Compute(sent, rtts, dups, reord))
	return r
}

// sleepCtx waits d or until ctx ends; false when ctx ended.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
