package config

import (
	"fmt"
	"os"
	"strings"
)

// Secret is a credential read from a file or an environment variable, or
// (discouraged) given inline. Its value never prints: String, MarshalYAML and
// MarshalJSON all redact it.
//
// In YAML a secret key k is written as a sibling key k_file or k_env (or as a
// mapping with exactly one of file, env or value):
//
//	password_file: /run/secrets/ch
//	password_env: MERIDIAN_CLICKHOUSE_PASSWORD
//	password: {file: /run/secrets/ch}
type Secret struct {
	File  string `yaml:"file,omitempty"`
	Env   string `yaml:"env,omitempty"`
	Value string `yaml:"value,omitempty"`
}

// Redacted is what a set secret prints as.
const Redacted = "<redacted>"

// IsSet reports whether any source is configured.
func (s Secret) IsSet() bool { return s.File != "" || s.Env != "" || s.Value != "" }

// String never returns the value.
func (s Secret) String() string {
	if !s.IsSet() {
		return ""
	}
	return Redacted
}

// MarshalYAML shows where the secret comes from, never the value.
func (s Secret) MarshalYAML() (any, error) {
	switch {
	case s.File != "":
		return map[string]string{"file": s.File}, nil
	case s.Env != "":
		return map[string]string{"env": s.Env}, nil
	case s.Value != "":
		return map[string]string{"value": Redacted}, nil
	}
	return nil, nil
}

// MarshalJSON redacts like MarshalYAML.
func (s Secret) MarshalJSON() ([]byte, error) {
	if !s.IsSet() {
		return []byte(`""`), nil
	}
	return []byte(`"` + Redacted + `"`), nil
}

// Validate checks that at most one source is set, and that it is readable.
func (s Secret) Validate(r *Reporter) {
	n := 0
	for _, v := range []string{s.File, s.Env, s.Value} {
		if v != "" {
			n++
		}
	}
	if n > 1 {
		r.Errorf("", "set only one of file, env or value")
		return
	}
	if _, err := s.Resolve(); err != nil {
		r.Errorf("", "%v", err)
	}
}

// Resolve reads the secret. Surrounding whitespace of a file's content is
// trimmed. The error never contains the value.
func (s Secret) Resolve() (string, error) {
	switch {
	case s.File != "":
		b, err := os.ReadFile(s.File)
		if err != nil {
			return "", fmt.Errorf("cannot read secret file %s: %w", s.File, unwrapPathErr(err))
		}
		return strings.TrimSpace(string(b)), nil
	case s.Env != "":
		v, ok := os.LookupEnv(s.Env)
		if !ok {
			return "", fmt.Errorf("environment variable %s is not set", s.Env)
		}
		return v, nil
	}
	return s.Value, nil
}

func unwrapPathErr(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
