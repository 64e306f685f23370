// Package config loads Meridian's YAML configuration: defaults first, then the
// file, then validation. Errors name the file, the key path and, where known,
// the line, and say what was expected.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Error is a configuration error: which file, which key, what was wrong.
type Error struct {
	File string
	Path string // dotted key path, e.g. "pipeline.flush_rows"
	Line int    // 0 when unknown
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is a list of configuration errors reported together.
type Errors []*Error

func (es Errors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Validator is implemented by configuration sections. Validate reports
// problems through the Reporter with paths relative to the section.
type Validator interface {
	Validate(r *Reporter)
}

// Reporter collects validation errors under a key path prefix.
type Reporter struct {
	prefix string
	errs   *[]pathErr
}

type pathErr struct {
	path string
	msg  string
}

// NewReporter returns an empty root reporter.
func NewReporter() *Reporter { return &Reporter{errs: &[]pathErr{}} }

// Sub returns a reporter for a nested key.
func (r *Reporter) Sub(key string) *Reporter {
	return &Reporter{prefix: joinPath(r.prefix, key), errs: r.errs}
}

// Index returns a reporter for the i-th element of a list key.
func (r *Reporter) Index(key string, i int) *Reporter {
	return &Reporter{prefix: joinPath(r.prefix, key) + "[" + strconv.Itoa(i) + "]", errs: r.errs}
}

// Errorf records a problem with key (relative to the reporter; "" for the
// reporter's own path).
func (r *Reporter) Errorf(key, format string, args ...any) {
	*r.errs = append(*r.errs, pathErr{path: joinPath(r.prefix, key), msg: fmt.Sprintf(format, args...)})
}

// Validate runs v under key.
func (r *Reporter) Validate(key string, v Validator) {
	v.Validate(r.Sub(key))
}

// Err returns nil when nothing was reported.
func (r *Reporter) Err() error {
	if len(*r.errs) == 0 {
		return nil
	}
	es := make(Errors, len(*r.errs))
	for i, e := range *r.errs {
		es[i] = &Error{Path: e.path, Msg: e.msg}
	}
	return es
}

func joinPath(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	default:
		return a + "." + b
	}
}

// Load decodes the YAML file at path into dst, which must already hold the
// defaults, and validates it when dst implements Validator. Unknown keys are
// errors.
func Load(path string, dst any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return &Error{File: path, Msg: fmt.Sprintf("cannot read configuration: %v", errors.Unwrap(err))}
	}
	return Decode(path, data, dst)
}

// Decode is Load on bytes; name is used in errors.
func Decode(name string, data []byte, dst any) error {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return yamlErr(name, nil, nil, err)
	}
	paths := map[string]int{}
	indexNode(&root, "", map[int]string{}, paths)
	// Secret keys may be written as k_file: PATH or k_env: NAME; rewrite them
	// to k: {file: PATH} before the typed decode.
	rewriteSecretKeys(&root, "", paths)
	if len(bytes.TrimSpace(data)) > 0 {
		norm, err := yaml.Marshal(&root)
		if err != nil {
			return &Error{File: name, Msg: err.Error()}
		}
		var normRoot yaml.Node
		if err := yaml.Unmarshal(norm, &normRoot); err != nil {
			return yamlErr(name, nil, nil, err)
		}
		lines := map[int]string{}
		indexNode(&normRoot, "", lines, map[string]int{})
		dec := yaml.NewDecoder(bytes.NewReader(norm))
		dec.KnownFields(true)
		if err := dec.Decode(dst); err != nil {
			return yamlErr(name, lines, paths, err)
		}
	}
	if v, ok := dst.(Validator); ok {
		r := NewReporter()
		v.Validate(r)
		if err := r.Err(); err != nil {
			es := err.(Errors)
			for _, e := range es {
				e.File = name
				e.Line = lineOf(paths, e.Path)
			}
			return es
		}
	}
	return nil
}

// lineOf finds the line of path or of its nearest present parent.
func lineOf(paths map[string]int, path string) int {
	for p := path; p != ""; {
		if l, ok := paths[p]; ok {
			return l
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return 0
}

// indexNode records, for every key in the document, its dotted path by line
// and the line by path.
func indexNode(n *yaml.Node, path string, lines map[int]string, paths map[string]int) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			indexNode(c, path, lines, paths)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := joinPath(path, k.Value)
			if _, ok := lines[k.Line]; !ok {
				lines[k.Line] = p
			}
			paths[p] = k.Line
			indexNode(v, p, lines, paths)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := path + "[" + strconv.Itoa(i) + "]"
			if _, ok := lines[c.Line]; !ok {
				lines[c.Line] = p
			}
			paths[p] = c.Line
			indexNode(c, p, lines, paths)
		}
	}
}

var lineRe = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// yamlErr turns yaml.v3 errors ("line 3: field x not found in type …") into
// Errors with key paths.
func yamlErr(name string, lines map[int]string, paths map[string]int, err error) error {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	es := make(Errors, 0, len(msgs))
	for _, m := range msgs {
		e := &Error{File: name, Msg: m}
		if sm := lineRe.FindStringSubmatch(m); sm != nil {
			e.Line, _ = strconv.Atoi(sm[1])
			e.Msg = friendly(sm[2])
			if lines != nil {
				// The line is in the normalised document; report the
				// original file's line for the same key path.
				e.Path = lines[e.Line]
				e.Line = lineOf(paths, e.Path)
			}
		}
		es = append(es, e)
	}
	return es
}

var (
	unknownFieldRe = regexp.MustCompile(`^field (\S+) not found in type (\S+)$`)
	unmarshalRe    = regexp.MustCompile("^cannot unmarshal !!(\\w+) `(.*)` into (\\S+)$")
)

func friendly(m string) string {
	if sm := unknownFieldRe.FindStringSubmatch(m); sm != nil {
		return fmt.Sprintf("unknown key %q", sm[1])
	}
	if sm := unmarshalRe.FindStringSubmatch(m); sm != nil {
		want := sm[3]
		switch want {
		case "time.Duration":
			want = "a duration such as 500ms, 10s or 5m"
		case "int", "int64", "uint", "uint32", "uint64", "int32":
			want = "a whole number"
		case "bool":
			want = "true or false"
		case "float64":
			want = "a number"
		case "string":
			want = "a string"
		default:
			if strings.HasPrefix(want, "[]") {
				want = "a list"
			} else if strings.HasPrefix(want, "map[") || strings.Contains(want, ".") {
				want = "a mapping"
			}
		}
		return fmt.Sprintf("got %s %q, expected %s", sm[1], sm[2], want)
	}
	return m
}

// rewriteSecretKeys turns "k_file: PATH" into "k: {file: PATH}" and
// "k_env: NAME" into "k: {env: NAME}" in every mapping. No non-secret key of
// Meridian's configuration ends in _file or _env.
func rewriteSecretKeys(n *yaml.Node, path string, paths map[string]int) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			rewriteSecretKeys(c, path, paths)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			for _, suf := range []string{"_file", "_env"} {
				base, ok := strings.CutSuffix(k.Value, suf)
				if !ok || base == "" || v.Kind != yaml.ScalarNode {
					continue
				}
				line := k.Line
				k.Value = base
				n.Content[i+1] = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{
					{Kind: yaml.ScalarNode, Tag: "!!str", Value: suf[1:]},
					v,
				}}
				p := joinPath(path, base)
				if _, seen := paths[p]; !seen {
					paths[p] = line
				}
				break
			}
			rewriteSecretKeys(n.Content[i+1], joinPath(path, k.Value), paths)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			rewriteSecretKeys(c, path+"["+strconv.Itoa(i)+"]", paths)
		}
	}
}
