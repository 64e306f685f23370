package runbooks

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"text/template"

	"github.com/miekg/dns"
)

// action is one planned call with its undo.
type action interface {
	Kind() string
	// Describe says what Apply would do (dry runs and plans record it).
	Describe() string
	Apply(ctx context.Context) (string, error)
	Undo(ctx context.Context) (string, error)
}

// providers are the configured action targets.
type providers struct {
	cfg   *Config
	dns   map[string]*dnsServer
	hooks map[string]*webhookEndpoint
	bgp   *Speaker
}

// newProviders resolves secrets and builds the targets; it does no I/O
// besides reading secret files.
func newProviders(cfg *Config, log *slog.Logger) (*providers, error) {
	p := &providers{cfg: cfg, dns: map[string]*dnsServer{}, hooks: map[string]*webhookEndpoint{}}
	for name, s := range cfg.DNS.Servers {
		srv, err := newDNSServer(name, s)
		if err != nil {
			return nil, err
		}
		p.dns[name] = srv
	}
	for name, e := range cfg.Webhook.Endpoints {
		ep, err := newWebhookEndpoint(name, e, cfg.Webhook)
		if err != nil {
			return nil, err
		}
		p.hooks[name] = ep
	}
	if cfg.BGP.enabled() {
		p.bgp = newSpeaker(cfg.BGP, log)
	}
	return p, nil
}

// PlannedStep is what a step of a run does.
type PlannedStep struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
	Call string `json:"call"`
	Undo string `json:"undo"` // auto or none
}

// Plan is a runbook resolved for one alert: parameters filled, every call
// spelled out.
type Plan struct {
	Runbook     string            `json:"runbook"`
	Group       string            `json:"group"`
	SLO         string            `json:"slo"`
	Labels      map[string]string `json:"labels"`
	Params      map[string]string `json:"params"`
	TrafficFrom string            `json:"traffic_from,omitempty"`
	TrafficTo   string            `json:"traffic_to,omitempty"`
	Steps       []PlannedStep     `json:"steps"`

	actions []action
}

type tmplData struct {
	Labels map[string]string
	Group  string
	SLO    string
	Params map[string]string
}

func render(t *template.Template, d tmplData) (string, error) {
	var b strings.Builder
	if err := t.Execute(&b, d); err != nil {
		return "", err
	}
	return strings.TrimSpace(b.String()), nil
}

// healthyPeers lists the groups of slo other than group that are known and
// not burning, sorted; and says why the others were skipped.
func healthyPeers(ctx context.Context, st StatusSource, slo, group string) (healthy, skipped []string, err error) {
	if st == nil {
		return nil, nil, fmt.Errorf("no SLO status source is connected")
	}
	groups := append([]string(nil), st.Groups(slo)...)
	sort.Strings(groups)
	for _, g := range groups {
		if g == group {
			continue
		}
		burning, known, err := st.GroupStatus(ctx, slo, g)
		switch {
		case err != nil:
			skipped = append(skipped, g+" (status error)")
		case !known:
			skipped = append(skipped, g+" (no data)")
		case burning:
			skipped = append(skipped, g+" (burning)")
		default:
			healthy = append(healthy, g)
		}
	}
	return healthy, skipped, nil
}

// Plan resolves the runbook for an alert's labels. It contacts nothing but
// the status source (for healthyPeer). runID names webhook events.
func (rb *Runbook) plan(ctx context.Context, labels map[string]string, st StatusSource, prov *providers, runID string) (*Plan, error) {
	p := &Plan{Runbook: rb.Name, Labels: labels, Params: map[string]string{},
		Group: labels[rb.GroupLabel], SLO: labels[rb.SLOLabel]}
	d := tmplData{Labels: labels, Group: p.Group, SLO: p.SLO, Params: p.Params}
	for _, k := range sortedKeys(rb.params) {
		t, err := rb.params[k].Clone()
		if err != nil {
			return nil, err
		}
		t.Funcs(template.FuncMap{"healthyPeer": func() (string, error) {
			h, skipped, err := healthyPeers(ctx, st, p.SLO, p.Group)
			if err != nil {
				return "", err
			}
			if len(h) == 0 {
				if len(skipped) == 0 {
					return "", fmt.Errorf("no healthy region other than %q for SLO %q: the SLO engine knows no other group", p.Group, p.SLO)
				}
				return "", fmt.Errorf("no healthy region other than %q for SLO %q (skipped: %s)", p.Group, p.SLO, strings.Join(skipped, ", "))
			}
			return h[0], nil
		}})
		v, err := render(t, d)
		if err != nil {
			return nil, fmt.Errorf("params.%s: %w", k, cleanTmplErr(err))
		}
		if !rb.patterns[k].MatchString(v) {
			return nil, fmt.Errorf("params.%s: value %q does not match %s", k, v, rb.patterns[k])
		}
		p.Params[k] = v
	}
	get := func(key string) (string, error) {
		t := rb.tmpls[key]
		if t == nil {
			return "", nil
		}
		v, err := render(t, d)
		if err != nil {
			return "", fmt.Errorf("%s: %w", key, cleanTmplErr(err))
		}
		return v, nil
	}
	var err error
	if rb.Traffic != nil {
		if p.TrafficFrom, err = get("traffic.from"); err != nil {
			return nil, err
		}
		if p.TrafficTo, err = get("traffic.to"); err != nil {
			return nil, err
		}
	}
	for i, s := range rb.Steps {
		key := "steps[" + strconv.Itoa(i) + "]"
		var a action
		switch {
		case s.DNS != nil:
			a, err = rb.planDNS(key, s.DNS, get, prov)
		case s.BGP != nil:
			a, err = rb.planBGP(key, s.BGP, get, prov)
		case s.Webhook != nil:
			a, err = rb.planWebhook(key, s, d, get, prov, runID)
		}
		if err != nil {
			return nil, fmt.Errorf("step %s: %w", s.Name, err)
		}
		p.actions = append(p.actions, a)
		p.Steps = append(p.Steps, PlannedStep{Name: s.Name, Kind: a.Kind(), Call: a.Describe(), Undo: s.Undo})
	}
	return p, nil
}

func cleanTmplErr(err error) error {
	// text/template errors start with "template: NAME:LINE:COL: executing …";
	// keep the useful end.
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 && strings.HasPrefix(s, "template: ") {
		if j := strings.Index(s, "error calling "); j >= 0 {
			return fmt.Errorf("%s", s[j:])
		}
		return fmt.Errorf("%s", s[i+2:])
	}
	return err
}

func (rb *Runbook) planDNS(key string, s *DNSStep, get func(string) (string, error), prov *providers) (action, error) {
	srv := prov.dns[s.Server]
	if srv == nil {
		return nil, fmt.Errorf("no DNS server %q configured", s.Server)
	}
	raw, err := get(key + ".name")
	if err != nil {
		return nil, err
	}
	name, err := qualify(raw, srv.zone)
	if err != nil {
		return nil, err
	}
	a := &dnsAction{srv: srv, op: s.Op, name: name, rrtype: dns.StringToType[s.Type], ttl: s.TTL}
	if s.CopyFrom != "" {
		raw, err := get(key + ".copy_from")
		if err != nil {
			return nil, err
		}
		if a.copyFrom, err = qualify(raw, srv.zone); err != nil {
			return nil, fmt.Errorf("copy_from: %w", err)
		}
	}
	for i := range s.Values {
		v, err := get(key + ".values[" + strconv.Itoa(i) + "]")
		if err != nil {
			return nil, err
		}
		switch s.Type {
		case "A", "AAAA":
			ip, err := netip.ParseAddr(v)
			if err != nil || ip.Is4() != (s.Type == "A") || ip.Zone() != "" {
				return nil, fmt.Errorf("value %q is not an IPv%s address", v, map[bool]string{true: "4", false: "6"}[s.Type == "A"])
			}
			v = ip.String()
		case "CNAME":
			if _, ok := dns.IsDomainName(v); !ok || v == "" {
				return nil, fmt.Errorf("value %q is not a domain name", v)
			}
			if !strings.HasSuffix(v, ".") {
				if v, err = qualify(v, srv.zone); err != nil {
					return nil, err
				}
			}
		}
		a.values = append(a.values, v)
	}
	return a, nil
}

func (rb *Runbook) planBGP(key string, s *BGPStep, get func(string) (string, error), prov *providers) (action, error) {
	if prov.bgp == nil {
		return nil, fmt.Errorf("no BGP speaker configured")
	}
	raw, err := get(key + ".prefix")
	if err != nil {
		return nil, err
	}
	pf, err := prov.cfg.BGP.allowedPrefix(raw)
	if err != nil {
		return nil, err
	}
	r := BGPRoute{Prefix: pf.String(), Prepend: s.Prepend, Communities: s.Communities, LocalPref: s.LocalPref, MED: s.MED}
	if s.Op == "announce" {
		if err := prov.cfg.BGP.checkRoute(r); err != nil {
			return nil, err
		}
	}
	return &bgpAction{sp: prov.bgp, op: s.Op, route: r, pf: pf}, nil
}

func (rb *Runbook) planWebhook(key string, s Step, d tmplData, get func(string) (string, error), prov *providers, runID string) (action, error) {
	ep := prov.hooks[s.Webhook.Endpoint]
	if ep == nil {
		return nil, fmt.Errorf("no webhook endpoint %q configured", s.Webhook.Endpoint)
	}
	data := map[string]string{}
	for k := range s.Webhook.Data {
		v, err := get(key + ".data." + k)
		if err != nil {
			return nil, err
		}
		data[k] = v
	}
	return &webhookAction{ep: ep, event: WebhookEvent{Type: s.Webhook.Event, Runbook: rb.Name, RunID: runID,
		Step: s.Name, Group: d.Group, Params: d.Params, Data: data}}, nil
}

// StaticStatus is a StatusSource from fixed answers (for `meridian runbook
// plan` and tests): groups listed in Burning burn, the others are healthy.
type StaticStatus struct {
	All     map[string][]string // SLO → its groups
	Burning map[string]bool     // "slo/group" → burning
	Unknown map[string]bool     // "slo/group" → no data
}

// GroupStatus implements StatusSource.
func (s *StaticStatus) GroupStatus(_ context.Context, slo, group string) (bool, bool, error) {
	k := slo + "/" + group
	if s.Unknown[k] {
		return false, false, nil
	}
	return s.Burning[k], true, nil
}

// Groups implements StatusSource.
func (s *StaticStatus) Groups(slo string) []string { return s.All[slo] }

// PlanFor is `meridian runbook plan`: it loads the runbooks of cfg.Files (or
// files), and resolves the one named for labels, without contacting any
// peer. st may be nil when the runbook does not use healthyPeer.
func PlanFor(cfg Config, files []string, name string, labels map[string]string, st StatusSource) (*Plan, error) {
	if len(files) == 0 {
		files = cfg.Files
	}
	rbs, err := LoadFiles(&cfg, files...)
	if err != nil {
		return nil, err
	}
	prov, err := newProviders(&cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, err
	}
	for _, rb := range rbs {
		if rb.Name == name {
			if !rb.Matches(labels) {
				return nil, fmt.Errorf("runbook %s: the labels do not match its trigger %q", name, rb.Trigger.Match)
			}
			return rb.plan(context.Background(), labels, st, prov, "plan")
		}
	}
	return nil, fmt.Errorf("no runbook named %q in %v", name, files)
}

// FormatPlan renders a plan for humans.
func FormatPlan(p *Plan) string {
	var b strings.Builder
	fmt.Fprintf(&b, "runbook %s for group %q (SLO %q)\n", p.Runbook, p.Group, p.SLO)
	for _, k := range sortedKeys(p.Params) {
		fmt.Fprintf(&b, "  param %s = %s\n", k, p.Params[k])
	}
	if p.TrafficFrom != "" || p.TrafficTo != "" {
		fmt.Fprintf(&b, "  moves traffic from %q to %q\n", p.TrafficFrom, p.TrafficTo)
	}
	for i, s := range p.Steps {
		fmt.Fprintf(&b, "  %d. %s: %s (undo: %s)\n", i+1, s.Name, s.Call, s.Undo)
	}
	return b.String()
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }
