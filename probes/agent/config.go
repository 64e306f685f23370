package agent

import (
	"net/url"
	"time"

	"github.com/meridian-obs/meridian/internal/config"
)

// Config is the agent's configuration file (`meridian-agent run --config`).
type Config struct {
	// Name, Region, Site and Labels identify the vantage point; the server
	// may override region and site.
	Name   string            `yaml:"name"`
	Region string            `yaml:"region"`
	Site   string            `yaml:"site"`
	Labels map[string]string `yaml:"labels"`

	// Server is the Meridian base URL, e.g. https://meridian.example:8080.
	Server string `yaml:"server"`
	// Token is the agent's bearer token: token_file: PATH or token_env: NAME.
	Token config.Secret `yaml:"token"`
	TLS   TLSConfig     `yaml:"tls"`

	// SpoolDir holds result batches until the server acknowledges them.
	SpoolDir string `yaml:"spool_dir"`
	// SpoolMaxBytes bounds the spool; when full the oldest batch is dropped
	// and counted (meridian_agent_spool_dropped_results_total).
	SpoolMaxBytes int64 `yaml:"spool_max_bytes"`
	// FlushInterval: results are batched for at most this long.
	FlushInterval time.Duration `yaml:"flush_interval"`
	// MaxBatchResults: or until a batch holds this many results.
	MaxBatchResults int `yaml:"max_batch_results"`
	// RetryMin/RetryMax bound the backoff while the server is unreachable.
	RetryMin time.Duration `yaml:"retry_min"`
	RetryMax time.Duration `yaml:"retry_max"`
	// RequestTimeout bounds one HTTP request to the server.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// MetricsListen serves the agent's own /metrics ("" disables).
	MetricsListen string `yaml:"metrics_listen"`
	// ICMPEngine: auto (the shared-socket engine when raw sockets are
	// allowed, else pro-bing), engine, or probing.
	ICMPEngine string `yaml:"icmp_engine"`
}

// TLSConfig of the connection to the server.
type TLSConfig struct {
	// CACert is a PEM bundle to trust instead of the system roots.
	CACert string `yaml:"ca_cert"`
	// ClientCert and ClientKey (client_key_file: PATH) for mutual TLS.
	ClientCert string        `yaml:"client_cert"`
	ClientKey  config.Secret `yaml:"client_key"`
	ServerName string        `yaml:"server_name"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		SpoolDir:        "/var/lib/meridian-agent/spool",
		SpoolMaxBytes:   256 << 20,
		FlushInterval:   5 * time.Second,
		MaxBatchResults: 5000,
		RetryMin:        time.Second,
		RetryMax:        time.Minute,
		RequestTimeout:  30 * time.Second,
		MetricsListen:   "127.0.0.1:9108",
		ICMPEngine:      "auto",
	}
}

// Validate implements config.Validator.
func (c *Config) Validate(r *config.Reporter) {
	if c.Name == "" {
		r.Errorf("name", "expected the agent's name (as declared in the server's probes.agents)")
	}
	if u, err := url.Parse(c.Server); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		r.Errorf("server", "expected the server's base URL (https://HOST:PORT), got %q", c.Server)
	}
	if !c.Token.IsSet() {
		r.Errorf("token", "expected token_file or token_env")
	} else {
		c.Token.Validate(r.Sub("token"))
	}
	if (c.TLS.ClientCert == "") != !c.TLS.ClientKey.IsSet() {
		r.Errorf("tls.client_cert", "set both client_cert and client_key_file, or neither")
	}
	if c.SpoolDir == "" {
		r.Errorf("spool_dir", "expected a directory")
	}
	if c.SpoolMaxBytes < 1<<20 {
		r.Errorf("spool_max_bytes", "expected at least 1048576, got %d", c.SpoolMaxBytes)
	}
	if c.FlushInterval <= 0 {
		r.Errorf("flush_interval", "expected a positive duration")
	}
	if c.MaxBatchResults < 1 {
		r.Errorf("max_batch_results", "expected at least 1")
	}
	if c.RetryMin <= 0 || c.RetryMax < c.RetryMin {
		r.Errorf("retry_min", "expected 0 < retry_min ≤ retry_max")
	}
	if c.RequestTimeout <= 0 {
		r.Errorf("request_timeout", "expected a positive duration")
	}
	switch c.ICMPEngine {
	case "auto", "engine", "probing":
	default:
		r.Errorf("icmp_engine", "expected auto, engine or probing, got %q", c.ICMPEngine)
	}
}

// LoadConfig reads an agent configuration file over the defaults.
func LoadConfig(path string) (Config, error) {
	c := DefaultConfig()
	err := config.Load(path, &c)
	return c, err
}
