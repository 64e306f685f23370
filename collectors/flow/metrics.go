package flow

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Reasons a datagram, set or record is not (wholly) turned into flows.
const (
	reasonTruncated       = "truncated"       // shorter than its headers say
	reasonMalformed       = "malformed"       // impossible lengths, unknown set id
	reasonUnknownVersion  = "unknown_version" // not NetFlow v5/v9/IPFIX or sFlow v5
	reasonNoTemplate      = "no_template"     // data set before its template (one per set)
	reasonBadTemplate     = "bad_template"    // template that cannot describe a record
	reasonTooManyExporter = "too_many_exporters"
	reasonSink            = "sink" // the pipeline refused the batch (only while stopping)
)

type metrics struct {
	datagrams   *prometheus.CounterVec // exporter, type
	flows       *prometheus.CounterVec // exporter, type
	errors      *prometheus.CounterVec // exporter, reason
	socketDrops *prometheus.CounterVec // listener
	dropped     *prometheus.CounterVec // reason (flows decoded but not handed over)
	rcvbuf      *prometheus.GaugeVec   // listener
	discarded   *prometheus.CounterVec // listener, reason
}

func newMetrics() *metrics {
	return &metrics{
		datagrams: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meridian_flow_datagrams_total", Help: "Datagrams received, by exporter and flow type.",
		}, []string{"exporter", "type"}),
		flows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meridian_flow_flows_total", Help: "Flow records decoded, by exporter and flow type.",
		}, []string{"exporter", "type"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meridian_flow_decode_errors_total", Help: "Datagrams, sets or records not decoded, by exporter and reason (no_template counts data sets).",
		}, []string{"exporter", "reason"}),
		socketDrops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meridian_flow_socket_drops_total", Help: "Datagrams dropped by the kernel because a socket's receive buffer was full (SO_RXQ_OVFL).",
		}, []string{"listener"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meridian_flow_flows_dropped_total", Help: "Decoded flows not handed to the pipeline, by reason.",
		}, []string{"reason"}),
		discarded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meridian_flow_datagrams_discarded_total", Help: "Datagrams read but not decoded, by listener and reason (shutdown: still queued when the drain time at stop was over).",
		}, []string{"listener", "reason"}),
		rcvbuf: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "meridian_flow_socket_rcvbuf_bytes", Help: "Receive buffer size the kernel granted to each socket of a listener.",
		}, []string{"listener"}),
	}
}

func (m *metrics) register(r prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.datagrams, m.flows, m.errors, m.socketDrops, m.dropped, m.rcvbuf, m.discarded} {
		if err := r.Register(c); err != nil {
			return fmt.Errorf("flow: register metrics: %w", err)
		}
	}
	return nil
}
