package runbooks

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// MatchOp is a label matcher's operator, as in Prometheus.
type MatchOp string

// Matcher operators.
const (
	MatchEqual     MatchOp = "="
	MatchNotEqual  MatchOp = "!="
	MatchRegexp    MatchOp = "=~"
	MatchNotRegexp MatchOp = "!~"
)

// Matcher is one label matcher, e.g. region=~"eu-.+".
type Matcher struct {
	Name  string
	Op    MatchOp
	Value string
	re    *regexp.Regexp
}

// Matches reports whether labels satisfy the matcher. A missing label is the
// empty string, as in Prometheus.
func (m *Matcher) Matches(labels map[string]string) bool {
	v := labels[m.Name]
	switch m.Op {
	case MatchEqual:
		return v == m.Value
	case MatchNotEqual:
		return v != m.Value
	case MatchRegexp:
		return m.re.MatchString(v)
	case MatchNotRegexp:
		return !m.re.MatchString(v)
	}
	return false
}

func (m *Matcher) String() string { return m.Name + string(m.Op) + strconv.Quote(m.Value) }

// Matchers all have to match.
type Matchers []*Matcher

// Matches reports whether every matcher matches.
func (ms Matchers) Matches(labels map[string]string) bool {
	for _, m := range ms {
		if !m.Matches(labels) {
			return false
		}
	}
	return true
}

var labelNameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ParseMatchers parses Prometheus matcher syntax: a comma-separated list of
// name op value, optionally inside braces; values may be double-quoted
// (Go escapes) or bare. Regexps are anchored, as in Prometheus.
func ParseMatchers(s string) (Matchers, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "{") {
		if !strings.HasSuffix(s, "}") {
			return nil, fmt.Errorf("missing closing }")
		}
		s = strings.TrimSpace(s[1 : len(s)-1])
	}
	var out Matchers
	for len(s) > 0 {
		i := strings.IndexAny(s, "=!")
		if i <= 0 {
			return nil, fmt.Errorf("expected name=value, name!=value, name=~regexp or name!~regexp at %q", s)
		}
		name := strings.TrimSpace(s[:i])
		if !labelNameRe.MatchString(name) {
			return nil, fmt.Errorf("invalid label name %q", name)
		}
		rest := s[i:]
		var op MatchOp
		for _, o := range []MatchOp{MatchRegexp, MatchNotRegexp, MatchNotEqual, MatchEqual} {
			if strings.HasPrefix(rest, string(o)) {
				op = o
				break
			}
		}
		if op == "" {
			return nil, fmt.Errorf("invalid operator after %q", name)
		}
		rest = strings.TrimLeft(rest[len(op):], " \t")
		var val string
		if strings.HasPrefix(rest, `"`) {
			q, err := strconv.QuotedPrefix(rest)
			if err != nil {
				return nil, fmt.Errorf("label %s: unterminated or invalid quoted value", name)
			}
			val, _ = strconv.Unquote(q)
			rest = rest[len(q):]
		} else {
			j := strings.IndexByte(rest, ',')
			if j < 0 {
				j = len(rest)
			}
			val = strings.TrimSpace(rest[:j])
			rest = rest[j:]
			if strings.ContainsAny(val, " \t\n=!~\"'{}") {
				return nil, fmt.Errorf("label %s: quote the value %q", name, val)
			}
		}
		m := &Matcher{Name: name, Op: op, Value: val}
		if op == MatchRegexp || op == MatchNotRegexp {
			if _, err := regexp.Compile(val); err != nil {
				return nil, fmt.Errorf("label %s: invalid regexp %q: %v", name, val, err)
			}
			re, err := regexp.Compile("^(?:" + val + ")$")
			if err != nil {
				return nil, fmt.Errorf("label %s: invalid regexp %q: %v", name, val, err)
			}
			m.re = re
		}
		out = append(out, m)
		rest = strings.TrimSpace(rest)
		if rest == "" {
			break
		}
		if rest[0] != ',' {
			return nil, fmt.Errorf("expected , after matcher %s", m)
		}
		s = strings.TrimSpace(rest[1:])
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no matchers")
	}
	return out, nil
}

// ParseLabels parses k=v,k2=v2 (the --labels flag of `meridian runbook plan`).
func ParseLabels(s string) (map[string]string, error) {
	out := map[string]string{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		if !ok || !labelNameRe.MatchString(k) {
			return nil, fmt.Errorf("expected name=value, got %q", kv)
		}
		out[k] = strings.TrimSpace(v)
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
