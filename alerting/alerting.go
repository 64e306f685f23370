package alerting

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	promcfg "github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery/targetgroup"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/notifier"

	"github.com/meridian-obs/meridian/internal/config"
	"github.com/meridian-obs/meridian/slo"
)

// AlertName of every SLO burn-rate alert.
const AlertName = "SLOErrorBudgetBurn"

// Config of the alerting component (section "alerting").
type Config struct {
	// Alertmanagers are base URLs (http://host:9093, with an optional path
	// prefix); alerts go to every one through its v2 API.
	Alertmanagers []string `yaml:"alertmanagers"`
	// AlertmanagerToken, when set, is sent as a bearer token.
	AlertmanagerToken config.Secret `yaml:"alertmanager_token"`
	Timeout           time.Duration `yaml:"timeout"`
	QueueCapacity     int           `yaml:"queue_capacity"`
	MaxBatchSize      int           `yaml:"max_batch_size"`
	// ResendInterval: firing alerts (and, for ResolvedResend, resolved
	// ones) are sent again this often.
	ResendInterval time.Duration `yaml:"resend_interval"`
	ResolvedResend time.Duration `yaml:"resolved_resend"`
	// ExternalLabels are added to every alert sent.
	ExternalLabels map[string]string `yaml:"external_labels"`
	// WebhookToken authenticates Alertmanager's webhook calls
	// (Authorization: Bearer …). Without it the webhook refuses every call.
	WebhookToken config.Secret `yaml:"webhook_token"`
	// RunbookURL and DashboardURL are the default annotation links; {slo}
	// and {group} are replaced. An SLO's own URLs win.
	RunbookURL   string `yaml:"runbook_url"`
	DashboardURL string `yaml:"dashboard_url"`
	// KeepResolved is how long resolved alerts stay listed by Alerts().
	KeepResolved time.Duration `yaml:"keep_resolved"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Timeout:        10 * time.Second,
		QueueCapacity:  10000,
		MaxBatchSize:   256,
		ResendInterval: time.Minute,
		ResolvedResend: 15 * time.Minute,
		DashboardURL:   "/slos/{slo}?group={group}",
		KeepResolved:   24 * time.Hour,
	}
}

// Validate implements config.Validator.
func (c Config) Validate(r *config.Reporter) {
	for i, a := range c.Alertmanagers {
		u, err := url.Parse(a)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			r.Errorf(fmt.Sprintf("alertmanagers[%d]", i), "expected an http(s)://host:port URL, got %q", a)
		}
	}
	if c.Timeout <= 0 {
		r.Errorf("timeout", "expected a positive duration, got %s", c.Timeout)
	}
	if c.QueueCapacity < 1 {
		r.Errorf("queue_capacity", "expected at least 1, got %d", c.QueueCapacity)
	}
	if c.MaxBatchSize < 1 {
		r.Errorf("max_batch_size", "expected at least 1, got %d", c.MaxBatchSize)
	}
	if c.ResendInterval < time.Second {
		r.Errorf("resend_interval", "expected at least 1s, got %s", c.ResendInterval)
	}
	if c.ResolvedResend < 0 {
		r.Errorf("resolved_resend", "expected ≥ 0, got %s", c.ResolvedResend)
	}
	for k := range c.ExternalLabels {
		if !model.LegacyValidation.IsValidLabelName(k) {
			r.Errorf("external_labels."+k, "expected a label name")
		}
	}
	c.AlertmanagerToken.Validate(r.Sub("alertmanager_token"))
	c.WebhookToken.Validate(r.Sub("webhook_token"))
}

// ConnSource gives the ClickHouse connection (nil while not connected).
type ConnSource interface {
	Conn() driver.Conn
}

// Deps of the component.
type Deps struct {
	Log      *slog.Logger
	Registry prometheus.Registerer
	// Store, when set, receives every alert change in the alerts table.
	Store ConnSource
	Now   func() time.Time
}

// Alerting is the component.
type Alerting struct {
	cfg     Config
	log     *slog.Logger
	deps    Deps
	now     func() time.Time
	manager *notifier.Manager
	token   string

	mu     sync.Mutex
	active map[string]*state // by fingerprint
	subs   []Subscriber
	// received from the webhook, by fingerprint (latest)
	received map[string]Alert

	tsets   chan map[string][]*targetgroup.Group
	done    chan struct{}
	pending chan []Alert

	stopResend, resendDone chan struct{}

	sent, transitions *prometheus.CounterVec
	webhookErrors     *prometheus.CounterVec
	storeErrors       prometheus.Counter
}

type state struct {
	alert    Alert
	lastSent time.Time
	// expires is when an alert raised by another component (Raise)
	// resolves by itself; zero for the SLO alerts.
	expires time.Time
}

// New builds the component; no I/O.
func New(cfg Config, deps Deps) (*Alerting, error) {
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	if deps.Registry == nil {
		deps.Registry = prometheus.NewRegistry()
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	a := &Alerting{
		cfg: cfg, deps: deps, now: deps.Now, log: deps.Log.With("component", "alerting"),
		active: map[string]*state{}, received: map[string]Alert{},
		pending: make(chan []Alert, 1024),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meridian_alerting_alerts_queued_total",
			Help: "Alerts handed to the notifier queue, by status."}, []string{"status"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meridian_alerting_transitions_total",
			Help: "SLO alert state changes, by new status and severity."}, []string{"status", "severity"}),
		webhookErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meridian_alerting_webhook_rejected_total",
			Help: "Alertmanager webhook calls rejected, by reason."}, []string{"reason"}),
		storeErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "meridian_alerting_store_errors_total",
			Help: "Alert changes that could not be written to the alerts table."}),
	}
	for _, c := range []prometheus.Collector{a.sent, a.transitions, a.webhookErrors, a.storeErrors} {
		if err := deps.Registry.Register(c); err != nil {
			return nil, err
		}
	}
	tok, err := cfg.WebhookToken.Resolve()
	if err != nil {
		return nil, fmt.Errorf("alerting: webhook_token: %w", err)
	}
	a.token = tok
	if len(cfg.Alertmanagers) > 0 {
		ext := labels.FromMap(cfg.ExternalLabels)
		a.manager = notifier.NewManager(&notifier.Options{
			QueueCapacity:   cfg.QueueCapacity,
			DrainOnShutdown: true,
			ExternalLabels:  ext,
			Registerer:      deps.Registry,
			MaxBatchSize:    cfg.MaxBatchSize,
		}, model.UTF8Validation, a.log)
	}
	return a, nil
}

// promConfig builds the notifier's configuration: one Alertmanager set per
// URL, and the static target groups that discovery would give.
func (a *Alerting) promConfig() (*promcfg.Config, map[string][]*targetgroup.Group, error) {
	conf := &promcfg.Config{GlobalConfig: promcfg.DefaultGlobalConfig}
	tgs := map[string][]*targetgroup.Group{}
	var bearer string
	if a.cfg.AlertmanagerToken.IsSet() {
		t, err := a.cfg.AlertmanagerToken.Resolve()
		if err != nil {
			return nil, nil, fmt.Errorf("alerting: alertmanager_token: %w", err)
		}
		bearer = t
	}
	for i, raw := range a.cfg.Alertmanagers {
		u, err := url.Parse(raw)
		if err != nil {
			return nil, nil, fmt.Errorf("alerting: alertmanagers[%d]: %w", i, err)
		}
		amc := promcfg.DefaultAlertmanagerConfig
		amc.Scheme = u.Scheme
		amc.PathPrefix = strings.TrimSuffix(u.Path, "/")
		amc.Timeout = model.Duration(a.cfg.Timeout)
		amc.APIVersion = promcfg.AlertmanagerAPIVersionV2
		if bearer != "" {
			amc.HTTPClientConfig.Authorization = &commoncfg.Authorization{Type: "Bearer", Credentials: commoncfg.Secret(bearer)}
		}
		conf.AlertingConfig.AlertmanagerConfigs = append(conf.AlertingConfig.AlertmanagerConfigs, &amc)
		tgs[fmt.Sprintf("config-%d", i)] = []*targetgroup.Group{{
			Targets: []model.LabelSet{{model.AddressLabel: model.LabelValue(u.Host)}},
			Source:  fmt.Sprintf("meridian-%d", i),
		}}
	}
	return conf, tgs, nil
}

// Start starts the notifier (when Alertmanagers are configured) and the
// subscriber dispatcher.
func (a *Alerting) Start(ctx context.Context) error {
	a.done = make(chan struct{})
	if a.manager != nil {
		conf, tgs, err := a.promConfig()
		if err != nil {
			return err
		}
		if err := a.manager.ApplyConfig(conf); err != nil {
			return fmt.Errorf("alerting: notifier: %w", err)
		}
		a.tsets = make(chan map[string][]*targetgroup.Group, 1)
		a.tsets <- tgs
		go a.manager.Run(a.tsets)
		// Discovery is static: wait (briefly) until the notifier knows its
		// Alertmanagers so that the first alerts are not dropped.
		for i := 0; i < 100 && len(a.manager.Alertmanagers()) < len(a.cfg.Alertmanagers); i++ {
			time.Sleep(10 * time.Millisecond)
		}
	}
	a.stopResend = make(chan struct{})
	a.resendDone = make(chan struct{})
	go func() {
		defer close(a.resendDone)
		t := time.NewTicker(a.cfg.ResendInterval)
		defer t.Stop()
		for {
			select {
			case <-a.stopResend:
				return
			case <-t.C:
				a.resend(a.now())
			}
		}
	}()
	go a.dispatch()
	return nil
}

// Stop drains the notifier queue and the subscriber queue.
func (a *Alerting) Stop(ctx context.Context) error {
	if a.done == nil {
		return nil
	}
	close(a.stopResend)
	<-a.resendDone
	close(a.pending)
	var err error
	select {
	case <-a.done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if a.manager != nil {
		a.manager.Stop()
		close(a.tsets)
	}
	return err
}

// Subscribe registers fn to receive every alert change: SLO alerts that
// start firing or resolve, and alerts received from Alertmanager's webhook.
// Call before Start. fn is called from one goroutine, in order.
func (a *Alerting) Subscribe(fn Subscriber) {
	a.mu.Lock()
	a.subs = append(a.subs, fn)
	a.mu.Unlock()
}

func (a *Alerting) dispatch() {
	defer close(a.done)
	for batch := range a.pending {
		a.mu.Lock()
		subs := append([]Subscriber(nil), a.subs...)
		a.mu.Unlock()
		for _, al := range batch {
			for _, s := range subs {
				a.safeCall(s, al)
			}
		}
		a.store(batch)
	}
}

func (a *Alerting) safeCall(s Subscriber, al Alert) {
	defer func() {
		if r := recover(); r != nil {
			a.log.Error("alert subscriber panicked", "panic", r, "alert", al.Labels["alertname"])
		}
	}()
	s(al)
}

func (a *Alerting) publish(batch []Alert) {
	if len(batch) == 0 {
		return
	}
	defer func() { _ = recover() }() // after Stop
	a.pending <- batch
}

// Raise delivers an alert of another component — a runbook's escalation —
// to Alertmanager like Meridian's own: re-sent while it fires, resolved by
// itself after ttl. It is listed by the alerts API and written to the alerts
// table, but not handed to subscribers (a runbook's escalation never starts
// a runbook: no loops).
func (a *Alerting) Raise(al Alert, ttl time.Duration) {
	now := a.now()
	al = copyAlert(al)
	if al.Fingerprint == "" {
		al.Fingerprint = Fingerprint(al.Labels)
	}
	if al.StartsAt.IsZero() {
		al.StartsAt = now
	}
	al.Status, al.EndsAt = StatusFiring, time.Time{}
	if al.Source == "" {
		al.Source = "meridian"
	}
	a.mu.Lock()
	a.active[al.Fingerprint] = &state{alert: al, expires: now.Add(ttl)}
	a.mu.Unlock()
	a.transitions.WithLabelValues(StatusFiring, al.Labels["severity"]).Inc()
	a.resend(now)
	a.store([]Alert{al})
}

// Fingerprint is Alertmanager's fingerprint of a label set.
func Fingerprint(ls map[string]string) string {
	m := make(model.LabelSet, len(ls))
	for k, v := range ls {
		m[model.LabelName(k)] = model.LabelValue(v)
	}
	return m.Fingerprint().String()
}

// ObserveSLO is the slo.Listener: it runs the alert state machine over the
// statuses of one evaluation cycle. Stale statuses never change a state
// (firing alerts are still re-sent).
func (a *Alerting) ObserveSLO(at time.Time, statuses []slo.Status) {
	now := a.now()
	var changes []Alert
	a.mu.Lock()
	for _, st := range statuses {
		for _, c := range st.Conditions {
			lbls := a.labelsOf(st, c)
			fp := Fingerprint(lbls)
			cur := a.active[fp]
			switch {
			case c.Firing && (cur == nil || !cur.alert.Firing()):
				if st.Stale {
					continue // never start firing on missing data
				}
				al := Alert{Labels: lbls, Annotations: a.annotationsOf(st, c), Status: StatusFiring,
					StartsAt: c.Since, Fingerprint: fp, Source: "meridian"}
				cur = &state{alert: al}
				a.active[fp] = cur
				changes = append(changes, al)
				a.transitions.WithLabelValues(StatusFiring, c.Severity).Inc()
			case c.Firing:
				cur.alert.Annotations = a.annotationsOf(st, c)
			case cur != nil && cur.alert.Firing() && !st.Stale && c.State != slo.CondNoData:
				cur.alert.Status = StatusResolved
				cur.alert.EndsAt = now
				cur.alert.Annotations = a.annotationsOf(st, c)
				cur.lastSent = time.Time{}
				changes = append(changes, cur.alert)
				a.transitions.WithLabelValues(StatusResolved, c.Severity).Inc()
			}
		}
	}
	a.mu.Unlock()
	a.resend(now)
	a.publish(changes)
}

// resend sends firing alerts (and recently resolved ones) whose last send
// is older than resend_interval.
func (a *Alerting) resend(now time.Time) {
	var toSend []*notifier.Alert
	a.mu.Lock()
	for fp, s := range a.active {
		switch {
		case s.alert.Firing() && !s.expires.IsZero() && !now.Before(s.expires):
			s.alert.Status = StatusResolved
			s.alert.EndsAt = now
			s.lastSent = time.Time{}
		case s.alert.Firing():
		case now.Sub(s.alert.EndsAt) > a.cfg.KeepResolved:
			delete(a.active, fp)
			continue
		case now.Sub(s.alert.EndsAt) > a.cfg.ResolvedResend:
			continue
		}
		if now.Sub(s.lastSent) >= a.cfg.ResendInterval {
			s.lastSent = now
			toSend = append(toSend, a.toNotifier(s.alert, now))
		}
	}
	a.mu.Unlock()
	if a.manager == nil || len(toSend) == 0 {
		return
	}
	for _, n := range toSend {
		if n.EndsAt.After(now) {
			a.sent.WithLabelValues(StatusFiring).Inc()
		} else {
			a.sent.WithLabelValues(StatusResolved).Inc()
		}
	}
	a.manager.Send(toSend...)
}

func (a *Alerting) toNotifier(al Alert, now time.Time) *notifier.Alert {
	n := &notifier.Alert{
		Labels:       labels.FromMap(al.Labels),
		Annotations:  labels.FromMap(al.Annotations),
		StartsAt:     al.StartsAt,
		GeneratorURL: al.Annotations["dashboard_url"],
	}
	if al.Firing() {
		// As Prometheus does: Alertmanager resolves it by itself if
		// Meridian stops re-sending.
		n.EndsAt = now.Add(4 * a.cfg.ResendInterval)
	} else {
		n.EndsAt = al.EndsAt
	}
	return n
}

func (a *Alerting) labelsOf(st slo.Status, c slo.Condition) map[string]string {
	l := map[string]string{}
	if st.Spec != nil {
		for k, v := range st.Spec.Labels {
			l[k] = v
		}
	}
	l["alertname"] = AlertName
	l["slo"] = st.SLO
	label := st.GroupLabel
	if label == "" {
		label = "group"
	}
	l[label] = st.Group
	l["severity"] = c.Severity
	l["long_window"] = c.LongWindow
	l["short_window"] = c.ShortWindow
	return l
}

func pct(v *float64) string {
	if v == nil {
		return "no data"
	}
	return fmt.Sprintf("%.3f%%", *v*100)
}

func num(v *float64) string {
	if v == nil {
		return "no data"
	}
	return fmt.Sprintf("%.2f", *v)
}

func expand(tmpl, sloName, group string) string {
	return strings.NewReplacer("{slo}", url.PathEscape(sloName), "{group}", url.QueryEscape(group)).Replace(tmpl)
}

func (a *Alerting) annotationsOf(st slo.Status, c slo.Condition) map[string]string {
	ann := map[string]string{
		"summary": fmt.Sprintf("SLO %s (%s %s) is burning its error budget %s× too fast (%s)",
			st.SLO, st.GroupLabel, st.Group, num(c.LongBurn), c.Severity),
		"description": fmt.Sprintf("Burn rate %s over %s and %s over %s (threshold %g). SLI over %s: %s for an objective of %.3f%%; error budget remaining: %s.",
			num(c.LongBurn), c.LongWindow, num(c.ShortBurn), c.ShortWindow, c.Factor, st.Window, pct(st.SLI), st.Objective*100, pct(st.ErrorBudgetRemaining)),
	}
	runbook, dash := a.cfg.RunbookURL, a.cfg.DashboardURL
	if st.Spec != nil {
		if st.Spec.Alerting.RunbookURL != "" {
			runbook = st.Spec.Alerting.RunbookURL
		}
		if st.Spec.Alerting.DashboardURL != "" {
			dash = st.Spec.Alerting.DashboardURL
		}
	}
	if runbook != "" {
		ann["runbook_url"] = expand(runbook, st.SLO, st.Group)
	}
	if dash != "" {
		ann["dashboard_url"] = expand(dash, st.SLO, st.Group)
	}
	return ann
}

// Alerts lists Meridian's SLO alerts (firing, and resolved within
// keep_resolved) and the latest alerts received from Alertmanager, firing
// first, then by start time.
func (a *Alerting) Alerts() []Alert {
	a.mu.Lock()
	out := make([]Alert, 0, len(a.active)+len(a.received))
	for _, s := range a.active {
		out = append(out, copyAlert(s.alert))
	}
	for _, r := range a.received {
		out = append(out, copyAlert(r))
	}
	a.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Firing() != out[j].Firing() {
			return out[i].Firing()
		}
		if !out[i].StartsAt.Equal(out[j].StartsAt) {
			return out[i].StartsAt.After(out[j].StartsAt)
		}
		return out[i].Fingerprint < out[j].Fingerprint
	})
	return out
}

func copyAlert(al Alert) Alert {
	c := al
	c.Labels = make(map[string]string, len(al.Labels))
	for k, v := range al.Labels {
		c.Labels[k] = v
	}
	c.Annotations = make(map[string]string, len(al.Annotations))
	for k, v := range al.Annotations {
		c.Annotations[k] = v
	}
	return c
}

// store writes alert changes to the alerts table (best effort: a failure
// is logged and counted; the alert is delivered regardless).
func (a *Alerting) store(batch []Alert) {
	if a.deps.Store == nil || len(batch) == 0 {
		return
	}
	conn := a.deps.Store.Conn()
	if conn == nil {
		a.storeErrors.Inc()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := func() error {
		b, err := conn.PrepareBatch(ctx, "INSERT INTO alerts (time, fingerprint, source, status, alertname, slo, severity, label_names, label_values, annotation_names, annotation_values, starts_at, ends_at)")
		if err != nil {
			return err
		}
		now := a.now()
		for _, al := range batch {
			ln, lv := sortedKV(al.Labels)
			an, av := sortedKV(al.Annotations)
			src := al.Source
			if src == "" {
				src = "meridian"
			}
			if err := b.Append(now, al.Fingerprint, src, al.Status, al.Labels["alertname"], al.Labels["slo"], al.Labels["severity"],
				ln, lv, an, av, al.StartsAt, al.EndsAt); err != nil {
				_ = b.Abort()
				return err
			}
		}
		return b.Send()
	}()
	if err != nil {
		a.storeErrors.Inc()
		a.log.Warn("cannot write alerts to ClickHouse", "err", err)
	}
}

func sortedKV(m map[string]string) ([]string, []string) {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	vs := make([]string, len(ks))
	for i, k := range ks {
		vs[i] = m[k]
	}
	return ks, vs
}
