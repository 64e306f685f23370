package app

import (
	"github.com/meridian-obs/meridian/alerting"
	"github.com/meridian-obs/meridian/collectors/firewall"
	"github.com/meridian-obs/meridian/collectors/flow"
	"github.com/meridian-obs/meridian/collectors/vpc"
	"github.com/meridian-obs/meridian/internal/config"
	"github.com/meridian-obs/meridian/internal/telemetry"
	"github.com/meridian-obs/meridian/pipeline"
	"github.com/meridian-obs/meridian/pipeline/store"
	probeserver "github.com/meridian-obs/meridian/probes/server"
	"github.com/meridian-obs/meridian/runbooks"
	"github.com/meridian-obs/meridian/slo"
	"github.com/meridian-obs/meridian/web"
)

// Config is the server's whole configuration: one section per component.
// Every section has defaults, so an empty file (or none) is a valid
// configuration: the embedded default with a managed local ClickHouse.
type Config struct {
	// StateDir holds Meridian's local state: the managed ClickHouse, the
	// spool, generated credentials.
	StateDir   string                  `yaml:"state_dir"`
	Log        telemetry.LogConfig     `yaml:"log"`
	Tracing    telemetry.TracingConfig `yaml:"tracing"`
	HTTP       web.Config              `yaml:"http"`
	ClickHouse store.Config            `yaml:"clickhouse"`
	Pipeline   pipeline.Config         `yaml:"pipeline"`
	// (component sections are added below this line)
	Alerting alerting.Config    `yaml:"alerting"`
	SLO      slo.Config         `yaml:"slo"`
	Probes   probeserver.Config `yaml:"probes"`
	Firewall firewall.Config    `yaml:"firewall"`
	Flows    flow.Config        `yaml:"flows"`
	VPCLogs  vpc.Config         `yaml:"vpc_logs"`
	Runbooks runbooks.Config    `yaml:"runbooks"`
}

// DefaultConfig returns the embedded default.
func DefaultConfig() Config {
	return Config{
		StateDir:   "var/meridian",
		Log:        telemetry.DefaultLogConfig(),
		Tracing:    telemetry.DefaultTracingConfig(),
		HTTP:       web.DefaultConfig(),
		ClickHouse: store.DefaultConfig(),
		Pipeline:   pipeline.DefaultConfig(),
		Alerting:   alerting.DefaultConfig(),
		SLO:        slo.DefaultConfig(),
		Probes:     probeserver.DefaultConfig(),
		Firewall:   firewall.DefaultConfig(),
		Flows:      flow.DefaultConfig(),
		VPCLogs:    vpc.DefaultConfig(),
		Runbooks:   runbooks.DefaultConfig(),
	}
}

// Validate implements config.Validator.
func (c *Config) Validate(r *config.Reporter) {
	if c.StateDir == "" {
		r.Errorf("state_dir", "expected a directory")
	}
	r.Validate("log", c.Log)
	r.Validate("tracing", c.Tracing)
	r.Validate("http", c.HTTP)
	r.Validate("clickhouse", c.ClickHouse)
	r.Validate("pipeline", c.Pipeline)
	// (component sections are validated below this line)
	r.Validate("alerting", c.Alerting)
	r.Validate("slo", c.SLO)
	r.Validate("probes", c.Probes)
	r.Validate("firewall", c.Firewall)
	r.Validate("flows", c.Flows)
	r.Validate("vpc_logs", c.VPCLogs)
	r.Validate("runbooks", c.Runbooks)
}

// LoadConfig reads a configuration file over the defaults; path "" gives the
// defaults.
func LoadConfig(path string) (Config, error) {
	c := DefaultConfig()
	if path == "" {
		r := config.NewReporter()
		c.Validate(r)
		return c, r.Err()
	}
	err := config.Load(path, &c)
	return c, err
}
