package firewall

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// maxSources bounds the source label of the malformed counter; senders past
// it are counted as "other".
const maxSources = 256

type metrics struct {
	lines       *prometheus.CounterVec
	malformed   *prometheus.CounterVec
	dropped     *prometheus.CounterVec
	connections prometheus.Gauge
	batches     prometheus.Counter

	byFormat map[string]prometheus.Counter
	mu       sync.Mutex
	sources  map[string]bool
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		lines: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meridian_firewall_lines_total",
			Help: "Syslog lines stored, by the format that parsed them (unknown: stored raw).",
		}, []string{"format"}),
		malformed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meridian_firewall_malformed_total",
			Help: "Malformed syslog input by sender (hostname or address) and reason.",
		}, []string{"source", "reason"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meridian_firewall_rows_dropped_total",
			Help: "Parsed rows the pipeline did not accept, by reason.",
		}, []string{"reason"}),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "meridian_firewall_connections",
			Help: "Open syslog TCP and TLS connections.",
		}),
		batches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "meridian_firewall_batches_total",
			Help: "Batches written to the pipeline.",
		}),
		byFormat: map[string]prometheus.Counter{},
		sources:  map[string]bool{},
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.lines, m.malformed, m.dropped, m.connections, m.batches} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	for _, f := range []string{FormatIPTables, FormatPANOS, FormatASA, FormatFortiGate, FormatUnknown} {
		m.byFormat[f] = m.lines.WithLabelValues(f)
	}
	return m, nil
}

func (m *metrics) line(format string) {
	if c, ok := m.byFormat[format]; ok {
		c.Inc()
		return
	}
	m.lines.WithLabelValues(format).Inc()
}

func (m *metrics) bad(source, reason string) {
	m.mu.Lock()
	if !m.sources[source] {
		if len(m.sources) >= maxSources {
			source = "other"
		} else {
			m.sources[source] = true
		}
	}
	m.mu.Unlock()
	m.malformed.WithLabelValues(source, reason).Inc()
}
