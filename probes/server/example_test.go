package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meridian-obs/meridian/internal/config"
)

type root struct {
	Probes Config `yaml:"probes"`
}

func (r *root) Validate(rep *config.Reporter) { rep.Validate("probes", r.Probes) }

// The YAML of docs/configuration.md decodes (secret keys as token_file) and
// validates; errors name the key path.
func TestConfigYAML(t *testing.T) {
	dir := t.TempDir()
	tok := filepath.Join(dir, "nyc1.token")
	os.WriteFile(tok, []byte("s3cret\n"), 0o600)
	doc := `probes:
  agents:
    - {name: par1, token_hash: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08}
    - {name: nyc1, token_file: ` + tok + `, region: us-east}
  checks:
    - {name: edge-icmp, type: icmp, target: edge.nyc.example.net, count: 10, spacing: 100ms,
       interval: 30s, regions: [eu-west], target_region: us-east}
    - {name: api-https, type: http, target: "https://api.example.net/health", interval: 1m,
       params: {expect_status: "200", body_contains: ok}, target_region: us-east}
`
	c := &root{Probes: DefaultConfig()}
	if err := config.Decode("meridian.yaml", []byte(doc), c); err != nil {
		t.Fatal(err)
	}
	p := c.Probes
	if len(p.Agents) != 2 || p.Agents[1].Token.File != tok || p.Agents[1].Region != "us-east" ||
		p.Checks[0].Spacing != 100*time.Millisecond || p.Checks[0].Regions[0] != "eu-west" || p.Checks[1].Params["body_contains"] != "ok" ||
		p.StaleAfter != 3*time.Minute {
		t.Errorf("decoded %+v", p)
	}
	bad := strings.Replace(doc, "type: icmp", "type: smtp", 1)
	c = &root{Probes: DefaultConfig()}
	err := config.Decode("meridian.yaml", []byte(bad), c)
	if err == nil || !strings.Contains(err.Error(), "meridian.yaml:6: probes.checks[0].type") {
		t.Errorf("bad type: %v", err)
	}
}
