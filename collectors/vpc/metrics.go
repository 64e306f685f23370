package vpc

import "github.com/prometheus/client_golang/prometheus"

// Metrics of VPC log ingestion; a nil *Metrics counts nothing.
type Metrics struct {
	recordsTotal *prometheus.CounterVec
	badTotal     *prometheus.CounterVec
	filesTotal   *prometheus.CounterVec
}

// NewMetrics registers the metrics with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		recordsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meridian_vpc_records_total",
			Help: "VPC flow log records by log-status: ok (stored), nodata and skipdata (counted only).",
		}, []string{"status"}),
		badTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meridian_vpc_bad_total",
			Help: "Bad VPC flow log records and files, by reason (the file and line are logged).",
		}, []string{"reason"}),
		filesTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meridian_vpc_files_total",
			Help: "VPC flow log files ingested, by result (clean, with_errors).",
		}, []string{"result"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.recordsTotal, m.badTotal, m.filesTotal} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

func (m *Metrics) records(status string, n int) {
	if m != nil {
		m.recordsTotal.WithLabelValues(status).Add(float64(n))
	}
}

func (m *Metrics) bad(reason string) {
	if m != nil {
		m.badTotal.WithLabelValues(reason).Inc()
	}
}

func (m *Metrics) file(clean bool) {
	if m == nil {
		return
	}
	if clean {
		m.filesTotal.WithLabelValues("clean").Inc()
	} else {
		m.filesTotal.WithLabelValues("with_errors").Inc()
	}
}
