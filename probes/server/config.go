package server

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/meridian-obs/meridian/internal/config"
	"github.com/meridian-obs/meridian/probes"
)

// Config is the `probes:` section of the server configuration.
type Config struct {
	Checks []CheckConfig `yaml:"checks"`
	Agents []AgentConfig `yaml:"agents"`
	// StaleAfter: an agent that delivered no batch for this long is stale.
	StaleAfter time.Duration `yaml:"stale_after"`
	// RefreshInterval tells agents how often to pull their assignments.
	RefreshInterval time.Duration `yaml:"refresh_interval"`
	// MaxBatchBytes bounds a results batch after decompression.
	MaxBatchBytes int64 `yaml:"max_batch_bytes"`
	// StateFile keeps registrations and the last delivered batch per agent
	// across restarts (deduplication); relative to the state directory.
	StateFile string `yaml:"state_path"`
}

// CheckConfig defines one check and who runs it.
type CheckConfig struct {
	Name     string            `yaml:"name"`
	Type     string            `yaml:"type"`
	Target   string            `yaml:"target"`
	Count    int               `yaml:"count"`
	Spacing  time.Duration     `yaml:"spacing"`
	Timeout  time.Duration     `yaml:"timeout"`
	Interval time.Duration     `yaml:"interval"`
	Params   map[string]string `yaml:"params"`

	// Who runs it: agents in any of Regions (empty: all), any of Sites
	// (empty: all), named in Agents (empty: all) and carrying every label
	// of AgentLabels.
	Regions     []string          `yaml:"regions"`
	Sites       []string          `yaml:"sites"`
	Agents      []string          `yaml:"agents"`
	AgentLabels map[string]string `yaml:"agent_labels"`

	// Where the target is: stored with every result (target_region,
	// target_site). TargetLabels are descriptive (config and docs only);
	// probe_results has no column for them.
	TargetRegion string            `yaml:"target_region"`
	TargetSite   string            `yaml:"target_site"`
	TargetLabels map[string]string `yaml:"target_labels"`
}

// AgentConfig declares an agent and its token: the hex SHA-256 of the token
// (token_hash), or the token itself as a secret (token_file: PATH,
// token_env: NAME), which the server hashes at start and never keeps.
type AgentConfig struct {
	Name      string        `yaml:"name"`
	TokenHash string        `yaml:"token_hash"`
	Token     config.Secret `yaml:"token"`
	// Region and Site, when set, override what the agent registers with.
	Region string `yaml:"region"`
	Site   string `yaml:"site"`
}

// DefaultConfig returns the defaults: no checks, no agents.
func DefaultConfig() Config {
	return Config{
		StaleAfter:      3 * time.Minute,
		RefreshInterval: time.Minute,
		MaxBatchBytes:   16 << 20,
		StateFile:       "probes/agents.json",
	}
}

// Check returns the probe definition sent to agents.
func (c CheckConfig) Check() probes.Check {
	return probes.Check{Name: c.Name, Type: c.Type, Target: c.Target, Count: c.Count, Spacing: c.Spacing,
		Timeout: c.Timeout, Interval: c.Interval, Params: c.Params}.WithDefaults()
}

// Validate implements config.Validator.
func (c Config) Validate(r *config.Reporter) {
	if c.StaleAfter <= 0 {
		r.Errorf("stale_after", "expected a positive duration, got %s", c.StaleAfter)
	}
	if c.RefreshInterval < time.Second {
		r.Errorf("refresh_interval", "expected at least 1s, got %s", c.RefreshInterval)
	}
	if c.MaxBatchBytes < 1<<16 {
		r.Errorf("max_batch_bytes", "expected at least 65536, got %d", c.MaxBatchBytes)
	}
	if c.StateFile == "" {
		r.Errorf("state_path", "expected a path")
	}
	names := map[string]bool{}
	for i, ch := range c.Checks {
		cr := r.Index("checks", i)
		if ch.Name == "" || strings.ContainsAny(ch.Name, " \t\n") {
			cr.Errorf("name", "expected a name without spaces, got %q", ch.Name)
		} else if names[ch.Name] {
			cr.Errorf("name", "duplicate check name %q", ch.Name)
		}
		names[ch.Name] = true
		if !slices.Contains(probes.Types, ch.Type) {
			cr.Errorf("type", "expected one of %s, got %q", strings.Join(probes.Types, ", "), ch.Type)
		}
		if ch.Target == "" {
			cr.Errorf("target", "expected a target")
		}
		switch ch.Type {
		case probes.TypeHTTP:
			if u, err := url.Parse(ch.Target); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				cr.Errorf("target", "expected an http:// or https:// URL")
			}
		case probes.TypeTCP, probes.TypeUDP:
			if !strings.Contains(ch.Target, ":") {
				cr.Errorf("target", "expected HOST:PORT, got %q", ch.Target)
			}
		case probes.TypeDNS:
			if ch.Params["server"] == "" {
				cr.Errorf("params.server", "expected the DNS server to query (HOST:PORT)")
			}
		}
		if ch.Count < 0 || ch.Count > 10000 {
			cr.Errorf("count", "expected 1 to 10000 packets, got %d", ch.Count)
		}
		if ch.Spacing < 0 || ch.Timeout < 0 {
			cr.Errorf("spacing", "expected non-negative durations")
		}
		if ch.Interval != 0 && ch.Interval < time.Second {
			cr.Errorf("interval", "expected at least 1s, got %s", ch.Interval)
		}
		k := ch.Check()
		if time.Duration(k.Count-1)*k.Spacing+k.Timeout > k.Interval {
			cr.Errorf("interval", "a round lasts up to (count-1)·spacing+timeout = %s, longer than the interval %s",
				time.Duration(k.Count-1)*k.Spacing+k.Timeout, k.Interval)
		}
	}
	agents := map[string]bool{}
	for i, a := range c.Agents {
		ar := r.Index("agents", i)
		if a.Name == "" {
			ar.Errorf("name", "expected a name")
		} else if agents[a.Name] {
			ar.Errorf("name", "duplicate agent %q", a.Name)
		}
		agents[a.Name] = true
		switch {
		case a.TokenHash != "" && a.Token.IsSet():
			ar.Errorf("token_hash", "set token_hash or token_file/token_env, not both")
		case a.TokenHash != "":
			if b, err := hex.DecodeString(a.TokenHash); err != nil || len(b) != sha256.Size {
				ar.Errorf("token_hash", "expected 64 hex digits (sha256 of the token)")
			}
		case a.Token.IsSet():
			a.Token.Validate(ar.Sub("token"))
		default:
			ar.Errorf("token_hash", "expected token_hash or token_file (the agent's bearer token)")
		}
	}
	for i, ch := range c.Checks {
		for _, n := range ch.Agents {
			if !agents[n] {
				r.Index("checks", i).Errorf("agents", "unknown agent %q", n)
			}
		}
	}
}

// HashToken returns the hex SHA-256 of a token, as token_hash expects.
func HashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

func (c CheckConfig) runs(a agentState) bool {
	if len(c.Regions) > 0 && !slices.Contains(c.Regions, a.Region) {
		return false
	}
	if len(c.Sites) > 0 && !slices.Contains(c.Sites, a.Site) {
		return false
	}
	if len(c.Agents) > 0 && !slices.Contains(c.Agents, a.Name) {
		return false
	}
	for k, v := range c.AgentLabels {
		if a.Labels[k] != v {
			return false
		}
	}
	return true
}

func (c CheckConfig) String() string { return fmt.Sprintf("%s %s %s", c.Name, c.Type, c.Target) }
