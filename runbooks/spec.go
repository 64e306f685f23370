package runbooks

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/miekg/dns"

	"github.com/meridian-obs/meridian/internal/config"
)

// File is a runbook specification file.
type File struct {
	Runbooks []Spec `yaml:"runbooks"`

	env *Config // the configured actions references are checked against
}

// Spec is one runbook.
type Spec struct {
	Name        string  `yaml:"name"`
	Description string  `yaml:"description"`
	Trigger     Trigger `yaml:"trigger"`
	// GroupLabel names the alert label holding the group acted on (blast
	// radius, cooldown); SLOLabel the SLO whose burn is verified.
	GroupLabel string `yaml:"group_label"`
	SLOLabel   string `yaml:"slo_label"`
	// Params are templates over the alert (.Labels, .Group, .SLO) and the
	// function healthyPeer; each result must match its pattern.
	Params   map[string]string `yaml:"params"`
	Patterns map[string]string `yaml:"param_patterns"`
	// Traffic declares that the run moves traffic From a group To another:
	// To must be healthy, and From must not be the last healthy group.
	Traffic          *Traffic      `yaml:"traffic"`
	Approval         Approval      `yaml:"approval"`
	Cooldown         time.Duration `yaml:"cooldown"`
	DryRun           bool          `yaml:"dry_run"`
	Steps            []Step        `yaml:"steps"`
	Verify           *Verify       `yaml:"verify"`
	Escalate         *Escalate     `yaml:"escalate"`
	RestoreOnResolve bool          `yaml:"restore_on_resolve"`
}

// Trigger selects the alerts that start the runbook.
type Trigger struct {
	Match string `yaml:"match"` // Prometheus matchers
}

// Traffic is a traffic move between groups (templates).
type Traffic struct {
	From string `yaml:"from"`
	To   string `yaml:"to"`
}

// Approval of runs by an operator.
type Approval struct {
	Required bool          `yaml:"required"`
	Timeout  time.Duration `yaml:"timeout"`
}

// Verify waits, then checks that the group's burn stopped.
type Verify struct {
	Wait time.Duration `yaml:"wait"`
	// Checks: how many times to check, Interval apart, before failing.
	Checks   int           `yaml:"checks"`
	Interval time.Duration `yaml:"interval"`
}

// Escalate is the alert raised when a run fails.
type Escalate struct {
	Disabled bool              `yaml:"disabled"`
	Labels   map[string]string `yaml:"labels"`
}

// Step is one action and its undo.
type Step struct {
	Name    string       `yaml:"name"`
	DNS     *DNSStep     `yaml:"dns"`
	BGP     *BGPStep     `yaml:"bgp"`
	Webhook *WebhookStep `yaml:"webhook"`
	// Undo: "auto" (restore what the step changed; default) or "none".
	Undo string `yaml:"undo"`
}

// DNSStep is an RFC 2136 update.
type DNSStep struct {
	Server string `yaml:"server"`
	// Op: set_ttl (keep the records, change the TTL) or replace (swap the
	// RRset for Values or for the records of CopyFrom).
	Op       string   `yaml:"op"`
	Name     string   `yaml:"name"` // template; relative names are in the zone
	Type     string   `yaml:"type"` // A, AAAA or CNAME
	TTL      uint32   `yaml:"ttl"`
	Values   []string `yaml:"values"`
	CopyFrom string   `yaml:"copy_from"` // template
}

// BGPStep changes an announcement of the embedded speaker.
type BGPStep struct {
	Op          string   `yaml:"op"`     // announce or withdraw
	Prefix      string   `yaml:"prefix"` // template
	Prepend     int      `yaml:"prepend"`
	Communities []string `yaml:"communities"`
	LocalPref   uint32   `yaml:"local_pref"`
	MED         uint32   `yaml:"med"`
}

// WebhookStep posts a signed JSON event.
type WebhookStep struct {
	Endpoint string            `yaml:"endpoint"`
	Event    string            `yaml:"event"`
	Data     map[string]string `yaml:"data"` // templates
}

// Runbook is a loaded, validated spec.
type Runbook struct {
	Spec
	File     string
	matchers Matchers
	params   map[string]*template.Template
	patterns map[string]*regexp.Regexp
	tmpls    map[string]*template.Template // by "steps[i].field"
}

// DefaultParamPattern bounds every parameter value unless param_patterns
// says otherwise: one DNS-label-like token, so that a label cannot inject
// dots, spaces or other names.
const DefaultParamPattern = `^[A-Za-z0-9]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?$`

var nameRe = regexp.MustCompile(`^[a-z0-9]([a-z0-9_-]{0,62})$`)

// tmplFuncs are the functions of runbook templates. The real healthyPeer is
// bound per run (see plan.go); this one only lets templates parse.
var tmplFuncs = template.FuncMap{
	"healthyPeer": func() (string, error) { return "", fmt.Errorf("healthyPeer is only available in params") },
}

func parseTmpl(name, text string) (*template.Template, error) {
	return template.New(name).Option("missingkey=error").Funcs(tmplFuncs).Parse(text)
}

// Validate implements config.Validator: structure, templates, and references
// to the configured DNS servers, webhook endpoints and BGP speaker.
func (f *File) Validate(r *config.Reporter) {
	seen := map[string]bool{}
	for i := range f.Runbooks {
		s := &f.Runbooks[i]
		rr := r.Index("runbooks", i)
		if !nameRe.MatchString(s.Name) {
			rr.Errorf("name", "expected a name of lowercase letters, digits, - and _, got %q", s.Name)
		} else if seen[s.Name] {
			rr.Errorf("name", "runbook %q is defined twice", s.Name)
		}
		seen[s.Name] = true
		s.validate(runbookReporter{rr, s.Name}, f.env)
	}
}

// runbookReporter prefixes messages with the runbook's name.
type runbookReporter struct {
	r    *config.Reporter
	name string
}

func (rr runbookReporter) Errorf(key, format string, args ...any) {
	rr.r.Errorf(key, "runbook %q: %s", rr.name, fmt.Sprintf(format, args...))
}

func (s *Spec) validate(r runbookReporter, env *Config) {
	if _, err := ParseMatchers(s.Trigger.Match); err != nil {
		r.Errorf("trigger.match", "%v", err)
	}
	if s.GroupLabel == "" {
		s.GroupLabel = "region"
	}
	if s.SLOLabel == "" {
		s.SLOLabel = "slo"
	}
	for _, k := range sortedKeys(s.Params) {
		if !labelNameRe.MatchString(k) {
			r.Errorf("params."+k, "expected a parameter name of letters, digits and _")
		}
		if _, err := parseTmpl(k, s.Params[k]); err != nil {
			r.Errorf("params."+k, "invalid template: %v", err)
		}
	}
	for _, k := range sortedKeys(s.Patterns) {
		if _, ok := s.Params[k]; !ok {
			r.Errorf("param_patterns."+k, "no parameter %q", k)
		}
		if _, err := regexp.Compile(s.Patterns[k]); err != nil {
			r.Errorf("param_patterns."+k, "invalid regexp: %v", err)
		}
	}
	if s.Traffic != nil {
		if s.Traffic.From == "" && s.Traffic.To == "" {
			r.Errorf("traffic", "expected from and/or to")
		}
		for k, t := range map[string]string{"traffic.from": s.Traffic.From, "traffic.to": s.Traffic.To} {
			if _, err := parseTmpl(k, t); err != nil {
				r.Errorf(k, "invalid template: %v", err)
			}
		}
	}
	if s.Approval.Timeout < 0 {
		r.Errorf("approval.timeout", "expected a duration ≥ 0, got %s", s.Approval.Timeout)
	}
	if s.Cooldown < 0 {
		r.Errorf("cooldown", "expected a duration ≥ 0, got %s", s.Cooldown)
	}
	if len(s.Steps) == 0 {
		r.Errorf("steps", "expected at least one step")
	}
	stepNames := map[string]bool{}
	for i := range s.Steps {
		st := &s.Steps[i]
		key := "steps[" + strconv.Itoa(i) + "]"
		if st.Name == "" {
			st.Name = "step" + strconv.Itoa(i+1)
		}
		if stepNames[st.Name] {
			r.Errorf(key+".name", "step %q is defined twice", st.Name)
		}
		stepNames[st.Name] = true
		n := 0
		for _, set := range []bool{st.DNS != nil, st.BGP != nil, st.Webhook != nil} {
			if set {
				n++
			}
		}
		if n != 1 {
			r.Errorf(key, "expected exactly one action: dns, bgp or webhook")
			continue
		}
		switch st.Undo {
		case "":
			st.Undo = "auto"
		case "auto", "none":
		default:
			r.Errorf(key+".undo", "expected auto or none, got %q", st.Undo)
		}
		switch {
		case st.DNS != nil:
			st.DNS.validate(r, key+".dns", env)
		case st.BGP != nil:
			st.BGP.validate(r, key+".bgp", env)
		case st.Webhook != nil:
			st.Webhook.validate(r, key+".webhook", env)
		}
	}
	if v := s.Verify; v != nil {
		if v.Wait < 0 || v.Interval < 0 || v.Checks < 0 {
			r.Errorf("verify", "wait, interval and checks must not be negative")
		}
	}
	if s.Escalate != nil {
		for k := range s.Escalate.Labels {
			if !labelNameRe.MatchString(k) {
				r.Errorf("escalate.labels."+k, "invalid label name")
			}
		}
	}
}

func checkTmpl(r runbookReporter, key, text string, required bool) {
	if text == "" {
		if required {
			r.Errorf(key, "required")
		}
		return
	}
	if _, err := parseTmpl(key, text); err != nil {
		r.Errorf(key, "invalid template: %v", err)
	}
}

func (d *DNSStep) validate(r runbookReporter, key string, env *Config) {
	if env != nil {
		if _, ok := env.DNS.Servers[d.Server]; !ok {
			r.Errorf(key+".server", "no DNS server %q in the runbooks.dns.servers configuration", d.Server)
		}
	}
	checkTmpl(r, key+".name", d.Name, true)
	switch d.Type {
	case "A", "AAAA", "CNAME":
	default:
		r.Errorf(key+".type", "expected A, AAAA or CNAME, got %q", d.Type)
	}
	switch d.Op {
	case "set_ttl":
		if d.TTL == 0 {
			r.Errorf(key+".ttl", "expected a TTL in seconds (1 or more)")
		}
		if len(d.Values) > 0 || d.CopyFrom != "" {
			r.Errorf(key, "set_ttl keeps the records: values and copy_from are not allowed")
		}
	case "replace":
		if (len(d.Values) > 0) == (d.CopyFrom != "") {
			r.Errorf(key, "replace needs exactly one of values or copy_from")
		}
		if d.Type == "CNAME" && len(d.Values) > 1 {
			r.Errorf(key+".values", "a CNAME has exactly one value")
		}
		for i, v := range d.Values {
			checkTmpl(r, key+".values["+strconv.Itoa(i)+"]", v, true)
		}
		checkTmpl(r, key+".copy_from", d.CopyFrom, false)
	default:
		r.Errorf(key+".op", "expected set_ttl or replace, got %q", d.Op)
	}
	if d.TTL > 86400*7 {
		r.Errorf(key+".ttl", "expected at most one week, got %d", d.TTL)
	}
}

func (b *BGPStep) validate(r runbookReporter, key string, env *Config) {
	if env != nil && !env.BGP.enabled() {
		r.Errorf(key, "no BGP speaker is configured (runbooks.bgp)")
	}
	switch b.Op {
	case "announce", "withdraw":
	default:
		r.Errorf(key+".op", "expected announce or withdraw, got %q", b.Op)
	}
	checkTmpl(r, key+".prefix", b.Prefix, true)
	if b.Op == "withdraw" && (b.Prepend != 0 || len(b.Communities) > 0 || b.LocalPref != 0 || b.MED != 0) {
		r.Errorf(key, "withdraw takes no attributes")
	}
	if b.Prepend < 0 || b.Prepend > 10 {
		r.Errorf(key+".prepend", "expected 0 to 10, got %d", b.Prepend)
	}
	for i, c := range b.Communities {
		if _, err := parseCommunity(c); err != nil {
			r.Errorf(key+".communities["+strconv.Itoa(i)+"]", "%v", err)
		}
	}
}

func (w *WebhookStep) validate(r runbookReporter, key string, env *Config) {
	if env != nil {
		if _, ok := env.Webhook.Endpoints[w.Endpoint]; !ok {
			r.Errorf(key+".endpoint", "no webhook endpoint %q in the runbooks.webhook.endpoints configuration", w.Endpoint)
		}
	}
	if w.Event == "" {
		w.Event = "runbook.step"
	}
	for _, k := range sortedKeys(w.Data) {
		checkTmpl(r, key+".data."+k, w.Data[k], false)
	}
}

// compile builds the matchers and templates of a validated spec.
func compile(file string, s Spec) (*Runbook, error) {
	rb := &Runbook{Spec: s, File: file, params: map[string]*template.Template{},
		patterns: map[string]*regexp.Regexp{}, tmpls: map[string]*template.Template{}}
	var err error
	if rb.matchers, err = ParseMatchers(s.Trigger.Match); err != nil {
		return nil, err
	}
	must := func(key, text string) {
		if text == "" || err != nil {
			return
		}
		rb.tmpls[key], err = parseTmpl(key, text)
	}
	for k, t := range s.Params {
		if rb.params[k], err = parseTmpl(k, t); err != nil {
			return nil, err
		}
		p := DefaultParamPattern
		if x, ok := s.Patterns[k]; ok {
			p = x
		}
		rb.patterns[k] = regexp.MustCompile(p)
	}
	if s.Traffic != nil {
		must("traffic.from", s.Traffic.From)
		must("traffic.to", s.Traffic.To)
	}
	for i, st := range s.Steps {
		key := "steps[" + strconv.Itoa(i) + "]"
		switch {
		case st.DNS != nil:
			must(key+".name", st.DNS.Name)
			must(key+".copy_from", st.DNS.CopyFrom)
			for j, v := range st.DNS.Values {
				must(key+".values["+strconv.Itoa(j)+"]", v)
			}
		case st.BGP != nil:
			must(key+".prefix", st.BGP.Prefix)
		case st.Webhook != nil:
			for k, v := range st.Webhook.Data {
				must(key+".data."+k, v)
			}
		}
	}
	return rb, err
}

// Matches reports whether a firing alert triggers the runbook.
func (rb *Runbook) Matches(labels map[string]string) bool { return rb.matchers.Matches(labels) }

// Parse decodes and validates one runbook file's content against the
// configured actions (env may be nil to check structure only).
func Parse(name string, data []byte, env *Config) ([]*Runbook, error) {
	f := File{env: env}
	if err := config.Decode(name, data, &f); err != nil {
		return nil, err
	}
	out := make([]*Runbook, 0, len(f.Runbooks))
	for _, s := range f.Runbooks {
		rb, err := compile(name, s)
		if err != nil {
			return nil, &config.Error{File: name, Msg: fmt.Sprintf("runbook %q: %v", s.Name, err)}
		}
		out = append(out, rb)
	}
	return out, nil
}

// LoadFiles loads every runbook of the files (globs allowed). Either all
// load or an error lists every problem; names must be unique across files.
func LoadFiles(env *Config, patterns ...string) ([]*Runbook, error) {
	var all []*Runbook
	var errs config.Errors
	byName := map[string]string{}
	for _, pat := range patterns {
		paths, err := filepath.Glob(pat)
		if err != nil || len(paths) == 0 {
			paths = []string{pat} // report the unreadable file below
		}
		for _, p := range paths {
			data, err := os.ReadFile(p)
			if err != nil {
				errs = append(errs, &config.Error{File: p, Msg: fmt.Sprintf("cannot read runbook file: %v", err)})
				continue
			}
			rbs, err := Parse(p, data, env)
			if err != nil {
				if es, ok := err.(config.Errors); ok {
					errs = append(errs, es...)
				} else if e, ok := err.(*config.Error); ok {
					errs = append(errs, e)
				} else {
					errs = append(errs, &config.Error{File: p, Msg: err.Error()})
				}
				continue
			}
			for _, rb := range rbs {
				if other, dup := byName[rb.Name]; dup {
					errs = append(errs, &config.Error{File: p, Msg: fmt.Sprintf("runbook %q is also defined in %s", rb.Name, other)})
					continue
				}
				byName[rb.Name] = p
				all = append(all, rb)
			}
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return all, nil
}

// qualify makes a templated DNS name absolute within zone and refuses
// anything outside it or not a plain host name.
func qualify(name, zone string) (string, error) {
	zone = dns.Fqdn(strings.ToLower(zone))
	n := strings.ToLower(strings.TrimSpace(name))
	if n == "" {
		return "", fmt.Errorf("empty record name")
	}
	if n == "@" {
		return zone, nil
	}
	if !strings.HasSuffix(n, ".") {
		n = n + "." + zone
	}
	if _, ok := dns.IsDomainName(n); !ok {
		return "", fmt.Errorf("record name %q is not a domain name", name)
	}
	for _, l := range dns.SplitDomainName(n) {
		if !hostLabelRe.MatchString(l) {
			return "", fmt.Errorf("record name %q has an invalid label %q", name, l)
		}
	}
	if !dns.IsSubDomain(zone, n) {
		return "", fmt.Errorf("record name %q is outside the zone %s", name, zone)
	}
	return n, nil
}

var hostLabelRe = regexp.MustCompile(`^(\*|[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?)$`)
