package slo

import (
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	sli, objective, budget, hasData, stale *prometheus.GaugeVec
	burn                                   *prometheus.GaugeVec
	firing                                 *prometheus.GaugeVec
	errors, recordErrors                   *prometheus.CounterVec
	goodTotal, eventsTotal                 *prometheus.CounterVec
	loadErrors                             prometheus.Counter
	evalSeconds, recordSeconds             prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	g := func(name, help string, labels ...string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "meridian_slo_" + name, Help: help}, labels)
	}
	m := &metrics{
		sli:       g("sli_ratio", "Ratio of good events over the SLO window (absent without data).", "slo", "group"),
		objective: g("objective_ratio", "Objective of the SLO.", "slo", "group"),
		budget:    g("error_budget_remaining_ratio", "Error budget remaining over the SLO window: 1 untouched, 0 exhausted (absent without data).", "slo", "group"),
		hasData:   g("has_data", "1 when the SLO window holds events, else 0.", "slo", "group"),
		stale:     g("stale", "1 when the last evaluation or recording of the SLO failed and the figures are the last good ones.", "slo", "group"),
		burn:      g("burn_rate", "Error budget burn rate over a window (absent without data).", "slo", "group", "window"),
		firing:    g("alert_firing", "1 while the burn-rate alert condition fires.", "slo", "group", "severity", "condition"),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meridian_slo_cycle_errors_total",
			Help: "Failed SLO cycles by reason (not_connected, record, evaluate, history)."}, []string{"reason"}),
		recordErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meridian_slo_record_errors_total",
			Help: "Failed recordings of an SLO's per-minute counts."}, []string{"slo"}),
		goodTotal: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meridian_slo_good_total",
			Help: "Good events (or good timeslices) of settled minutes, counted since the engine started."}, []string{"slo", "group"}),
		eventsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meridian_slo_total",
			Help: "Events (or timeslices) of settled minutes, counted since the engine started."}, []string{"slo", "group"}),
		loadErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "meridian_slo_file_errors_total",
			Help: "SLO files rejected at load."}),
		evalSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "meridian_slo_evaluation_duration_seconds",
			Help: "Time of one evaluation of every SLO.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 12)}),
		recordSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "meridian_slo_record_duration_seconds",
			Help: "Time of one recording pass over every SLO.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}),
	}
	for _, c := range []prometheus.Collector{m.sli, m.objective, m.budget, m.hasData, m.stale, m.burn, m.firing,
		m.errors, m.recordErrors, m.goodTotal, m.eventsTotal, m.loadErrors, m.evalSeconds, m.recordSeconds} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (m *metrics) export(s Status) {
	m.objective.WithLabelValues(s.SLO, s.Group).Set(s.Objective)
	m.hasData.WithLabelValues(s.SLO, s.Group).Set(b2f(s.HasData))
	m.stale.WithLabelValues(s.SLO, s.Group).Set(b2f(s.Stale))
	if s.SLI != nil {
		m.sli.WithLabelValues(s.SLO, s.Group).Set(*s.SLI)
		m.budget.WithLabelValues(s.SLO, s.Group).Set(*s.ErrorBudgetRemaining)
	} else {
		m.sli.DeleteLabelValues(s.SLO, s.Group)
		m.budget.DeleteLabelValues(s.SLO, s.Group)
	}
	for w, b := range s.BurnRates {
		if b != nil {
			m.burn.WithLabelValues(s.SLO, s.Group, w).Set(*b)
		} else {
			m.burn.DeleteLabelValues(s.SLO, s.Group, w)
		}
	}
	for _, c := range s.Conditions {
		m.firing.WithLabelValues(s.SLO, s.Group, c.Severity, c.Name).Set(b2f(c.Firing))
	}
}

func (m *metrics) forget(slo, group string) {
	l := prometheus.Labels{"slo": slo, "group": group}
	for _, v := range []*prometheus.GaugeVec{m.sli, m.objective, m.budget, m.hasData, m.stale, m.burn, m.firing} {
		v.DeletePartialMatch(l)
	}
}
