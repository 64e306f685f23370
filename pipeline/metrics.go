package pipeline

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	received, written, spooled, replayed, deduplicated *prometheus.CounterVec
	dropped                                            *prometheus.CounterVec
	insertErrors                                       *prometheus.CounterVec
	queue                                              *prometheus.GaugeVec
	flush                                              *prometheus.HistogramVec
	spoolBytes, spoolBatches                           prometheus.GaugeFunc
}

func newMetrics(p *Pipeline) *metrics {
	cv := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meridian_pipeline_" + name, Help: help}, labels)
	}
	return &metrics{
		received:     cv("rows_received_total", "Rows accepted by the pipeline.", "table"),
		written:      cv("rows_written_total", "Rows written to ClickHouse (direct and replayed).", "table"),
		spooled:      cv("rows_spooled_total", "Rows written to the disk spool.", "table"),
		replayed:     cv("rows_replayed_total", "Rows written to ClickHouse from the spool.", "table"),
		deduplicated: cv("rows_deduplicated_total", "Rows of a retried batch found already stored, not inserted again.", "table"),
		dropped: cv("rows_dropped_total", "Rows dropped, by reason: spool_full (oldest batch evicted), "+
			"too_large (batch larger than the spool), rejected (ClickHouse refused the row), "+
			"schema (table or columns do not match), spool_corrupt (unreadable spool file), spool_error.", "table", "reason"),
		insertErrors: cv("insert_errors_total", "Failed inserts by kind (retryable, permanent).", "table", "kind"),
		queue: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "meridian_pipeline_queue_rows",
			Help: "Rows waiting in memory."}, []string{"table"}),
		flush: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "meridian_pipeline_flush_duration_seconds",
			Help: "Time to insert one batch into ClickHouse.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)},
			[]string{"table"}),
		spoolBytes: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "meridian_pipeline_spool_bytes",
			Help: "Bytes in the disk spool."}, func() float64 { b, _ := p.SpoolStats(); return float64(b) }),
		spoolBatches: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "meridian_pipeline_spool_batches",
			Help: "Batches in the disk spool."}, func() float64 { _, n := p.SpoolStats(); return float64(n) }),
	}
}

func (m *metrics) register(r prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.received, m.written, m.spooled, m.replayed, m.deduplicated, m.dropped,
		m.insertErrors, m.queue, m.flush, m.spoolBytes, m.spoolBatches} {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}
