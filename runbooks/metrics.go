package runbooks

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	alerts, runs, blocks, actions, rejected   *prometheus.CounterVec
	auditWritten, auditDropped, auditFailures *prometheus.CounterVec
	auditPending                              prometheus.Gauge
	firstAction                               prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meridian_runbooks_alerts_total",
			Help: "Alerts received by runbooks, by result (matched, unmatched, duplicate, resolved, invalid)."}, []string{"result"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meridian_runbooks_runs_total",
			Help: "Runs by final state."}, []string{"runbook", "state"}),
		blocks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meridian_runbooks_guardrail_blocks_total",
			Help: "Runs blocked by a guardrail, by guardrail."}, []string{"guardrail"}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meridian_runbooks_actions_total",
			Help: "Action calls by kind, phase (apply, undo) and outcome."}, []string{"kind", "phase", "outcome"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meridian_runbooks_rejected_total",
			Help: "Bad input rejected (API bodies, labels, plans), by reason."}, []string{"reason"}),
		auditWritten: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meridian_runbooks_audit_written_total",
			Help: "Audit and run rows written to ClickHouse, by table."}, []string{"table"}),
		auditDropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meridian_runbooks_audit_dropped_total",
			Help: "Audit and run rows dropped because the buffer was full while ClickHouse was away, by table."}, []string{"table"}),
		auditFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meridian_runbooks_audit_insert_failures_total",
			Help: "Failed attempts to write the audit log (records are kept and retried), by reason."}, []string{"reason"}),
		auditPending: prometheus.NewGauge(prometheus.GaugeOpts{Name: "meridian_runbooks_audit_pending",
			Help: "Audit and run rows waiting for ClickHouse."}),
		firstAction: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "meridian_runbooks_first_action_seconds",
			Help:    "From a firing alert to the completion of a run's first action (runs without approval).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.alerts, m.runs, m.blocks, m.actions, m.rejected,
			m.auditWritten, m.auditDropped, m.auditFailures, m.auditPending, m.firstAction} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
