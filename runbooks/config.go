package runbooks

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/meridian-obs/meridian/internal/config"
)

// Config is the runbooks section of Meridian's configuration.
type Config struct {
	// Files are runbook specification files (globs allowed).
	Files []string `yaml:"files"`
	// DryRun makes every run a dry run: plans are recorded, nothing changes.
	DryRun bool `yaml:"dry_run"`
	// Paused blocks every automatic and manual run until resumed (API).
	Paused bool `yaml:"paused"`
	// MaxConcurrent runs executing at once.
	MaxConcurrent int `yaml:"max_concurrent"`
	// RateLimit: at most RateLimitRuns runs start executing per RateLimitWindow.
	RateLimitRuns   int           `yaml:"rate_limit_runs"`
	RateLimitWindow time.Duration `yaml:"rate_limit_window"`
	// BlastRadius: at most this many groups (regions) acted on at once.
	BlastRadius int `yaml:"blast_radius"`
	// ApprovalTimeout is the default time a run waits for approval.
	ApprovalTimeout time.Duration `yaml:"approval_timeout"`
	// DefaultCooldown applies to runbooks that set none.
	DefaultCooldown time.Duration `yaml:"default_cooldown"`
	// KeepRuns is how many finished runs the API keeps in memory.
	KeepRuns int `yaml:"keep_runs"`
	// AuditBuffer bounds the audit records waiting for ClickHouse.
	AuditBuffer int `yaml:"audit_buffer"`

	DNS     DNSConfig     `yaml:"dns"`
	BGP     BGPConfig     `yaml:"bgp"`
	Webhook WebhookConfig `yaml:"webhook"`
}

// DNSConfig names the DNS servers runbooks may update.
type DNSConfig struct {
	Servers map[string]DNSServer `yaml:"servers"`
}

// DNSServer is an authoritative server accepting RFC 2136 updates for Zone.
type DNSServer struct {
	Addr          string        `yaml:"addr"` // host:port
	Zone          string        `yaml:"zone"`
	TSIGName      string        `yaml:"tsig_name"`
	TSIGAlgorithm string        `yaml:"tsig_algorithm"` // hmac-sha256 (default), hmac-sha512, …
	TSIGSecret    config.Secret `yaml:"tsig_secret"`    // base64, as in tsig-keygen's output
	Timeout       time.Duration `yaml:"timeout"`
}

// BGPConfig is the embedded GoBGP speaker.
type BGPConfig struct {
	ASN      uint32 `yaml:"asn"`
	RouterID string `yaml:"router_id"`
	// ListenPort: -1 (default) never accepts connections, only dials peers.
	ListenPort int32 `yaml:"listen_port"`
	// NextHop of announced IPv4 prefixes (IPv6: NextHop6).
	NextHop  string    `yaml:"next_hop"`
	NextHop6 string    `yaml:"next_hop6"`
	Peers    []BGPPeer `yaml:"peers"`
	// AllowedPrefixes: runbooks may only announce or withdraw prefixes
	// inside one of these.
	AllowedPrefixes []string `yaml:"allowed_prefixes"`
	// Announce is the steady state, announced at start.
	Announce []BGPRoute `yaml:"announce"`
}

// BGPPeer is a neighbor of the speaker.
type BGPPeer struct {
	Address      string `yaml:"address"`
	ASN          uint32 `yaml:"asn"`
	Port         uint32 `yaml:"port"` // default 179
	LocalAddress string `yaml:"local_address"`
	Passive      bool   `yaml:"passive"`
}

// BGPRoute is an announcement.
type BGPRoute struct {
	Prefix      string   `yaml:"prefix"`
	Prepend     int      `yaml:"prepend"`
	Communities []string `yaml:"communities"`
	LocalPref   uint32   `yaml:"local_pref"`
	MED         uint32   `yaml:"med"`
}

// WebhookConfig lists webhook endpoints and the destination allowlist.
type WebhookConfig struct {
	// Allow lists host or host:port destinations; an endpoint outside it is
	// rejected at load and at send.
	Allow     []string                   `yaml:"allow"`
	Endpoints map[string]WebhookEndpoint `yaml:"endpoints"`
}

// WebhookEndpoint is a receiver of signed webhooks.
type WebhookEndpoint struct {
	URL string `yaml:"url"`
	// Secret is "whsec_<base64>" (Standard Webhooks).
	Secret   config.Secret `yaml:"secret"`
	Timeout  time.Duration `yaml:"timeout"`
	Attempts int           `yaml:"attempts"`
	Backoff  time.Duration `yaml:"backoff"`
}

// DefaultConfig returns conservative guardrails.
func DefaultConfig() Config {
	return Config{
		MaxConcurrent:   2,
		RateLimitRuns:   10,
		RateLimitWindow: time.Hour,
		BlastRadius:     1,
		ApprovalTimeout: 15 * time.Minute,
		DefaultCooldown: 30 * time.Minute,
		KeepRuns:        500,
		AuditBuffer:     10000,
		BGP:             BGPConfig{ListenPort: -1},
	}
}

// Validate implements config.Validator.
func (c Config) Validate(r *config.Reporter) {
	if c.MaxConcurrent < 1 {
		r.Errorf("max_concurrent", "expected at least 1, got %d", c.MaxConcurrent)
	}
	if c.RateLimitRuns < 1 {
		r.Errorf("rate_limit_runs", "expected at least 1, got %d", c.RateLimitRuns)
	}
	if c.RateLimitWindow <= 0 {
		r.Errorf("rate_limit_window", "expected a positive duration, got %s", c.RateLimitWindow)
	}
	if c.BlastRadius < 1 {
		r.Errorf("blast_radius", "expected at least 1, got %d", c.BlastRadius)
	}
	if c.ApprovalTimeout <= 0 {
		r.Errorf("approval_timeout", "expected a positive duration, got %s", c.ApprovalTimeout)
	}
	if c.DefaultCooldown < 0 {
		r.Errorf("default_cooldown", "expected a duration ≥ 0, got %s", c.DefaultCooldown)
	}
	if c.KeepRuns < 1 {
		r.Errorf("keep_runs", "expected at least 1, got %d", c.KeepRuns)
	}
	if c.AuditBuffer < 1 {
		r.Errorf("audit_buffer", "expected at least 1, got %d", c.AuditBuffer)
	}
	for _, name := range sortedKeys(c.DNS.Servers) {
		c.DNS.Servers[name].validate(r.Sub("dns.servers." + name))
	}
	c.BGP.validate(r.Sub("bgp"))
	c.Webhook.validate(r.Sub("webhook"))
	if len(c.Files) > 0 {
		// The runbooks themselves, so that `meridian serve --check` (and a
		// start) refuse an invalid runbook instead of half-running it.
		if _, err := LoadFiles(&c, c.Files...); err != nil {
			r.Errorf("files", "invalid runbooks:\n%v", err)
		}
	}
}

func (s DNSServer) validate(r *config.Reporter) {
	if _, _, err := net.SplitHostPort(s.Addr); err != nil {
		r.Errorf("addr", "expected host:port, got %q", s.Addr)
	}
	if _, ok := dns.IsDomainName(s.Zone); !ok || s.Zone == "" {
		r.Errorf("zone", "expected a domain name, got %q", s.Zone)
	}
	if s.TSIGName == "" {
		r.Errorf("tsig_name", "expected the TSIG key name (updates are always signed)")
	}
	if tsigAlgorithm(s.TSIGAlgorithm) == "" {
		r.Errorf("tsig_algorithm", "expected hmac-sha1, hmac-sha224, hmac-sha256, hmac-sha384 or hmac-sha512, got %q", s.TSIGAlgorithm)
	}
	if !s.TSIGSecret.IsSet() {
		r.Errorf("tsig_secret", "expected tsig_secret_file or tsig_secret_env")
	} else {
		s.TSIGSecret.Validate(r.Sub("tsig_secret"))
		if v, err := s.TSIGSecret.Resolve(); err == nil {
			if _, err := base64.StdEncoding.DecodeString(v); err != nil {
				r.Errorf("tsig_secret", "expected a base64 key (the secret of tsig-keygen's output)")
			}
		}
	}
	if s.Timeout < 0 {
		r.Errorf("timeout", "expected a duration ≥ 0, got %s", s.Timeout)
	}
}

func tsigAlgorithm(s string) string {
	switch strings.ToLower(strings.TrimSuffix(s, ".")) {
	case "", "hmac-sha256":
		return dns.HmacSHA256
	case "hmac-sha1":
		return dns.HmacSHA1
	case "hmac-sha224":
		return dns.HmacSHA224
	case "hmac-sha384":
		return dns.HmacSHA384
	case "hmac-sha512":
		return dns.HmacSHA512
	}
	return ""
}

func (b BGPConfig) enabled() bool { return b.ASN != 0 || len(b.Peers) > 0 }

func (b BGPConfig) validate(r *config.Reporter) {
	if !b.enabled() {
		return
	}
	if b.ASN == 0 {
		r.Errorf("asn", "expected the speaker's AS number")
	}
	if a, err := netip.ParseAddr(b.RouterID); err != nil || !a.Is4() {
		r.Errorf("router_id", "expected an IPv4 address, got %q", b.RouterID)
	}
	if b.ListenPort < -1 || b.ListenPort > 65535 {
		r.Errorf("listen_port", "expected -1 (do not listen) or a port, got %d", b.ListenPort)
	}
	if b.NextHop != "" {
		if a, err := netip.ParseAddr(b.NextHop); err != nil || !a.Is4() {
			r.Errorf("next_hop", "expected an IPv4 address, got %q", b.NextHop)
		}
	}
	if b.NextHop6 != "" {
		if a, err := netip.ParseAddr(b.NextHop6); err != nil || !a.Is6() {
			r.Errorf("next_hop6", "expected an IPv6 address, got %q", b.NextHop6)
		}
	}
	for i, p := range b.Peers {
		pr := r.Index("peers", i)
		if _, err := netip.ParseAddr(p.Address); err != nil {
			pr.Errorf("address", "expected an IP address, got %q", p.Address)
		}
		if p.ASN == 0 {
			pr.Errorf("asn", "expected the peer's AS number")
		}
		if p.LocalAddress != "" {
			if _, err := netip.ParseAddr(p.LocalAddress); err != nil {
				pr.Errorf("local_address", "expected an IP address, got %q", p.LocalAddress)
			}
		}
		if p.Port > 65535 {
			pr.Errorf("port", "expected a port, got %d", p.Port)
		}
	}
	if len(b.AllowedPrefixes) == 0 {
		r.Errorf("allowed_prefixes", "expected at least one prefix runbooks may announce or withdraw")
	}
	for i, p := range b.AllowedPrefixes {
		if _, err := netip.ParsePrefix(p); err != nil {
			r.Errorf("allowed_prefixes["+strconv.Itoa(i)+"]", "expected a prefix such as 203.0.113.0/24, got %q", p)
		}
	}
	for i, a := range b.Announce {
		if err := b.checkRoute(a); err != nil {
			r.Index("announce", i).Errorf("", "%v", err)
		}
	}
}

// allowedPrefix parses p and checks that it lies inside an allowed prefix.
func (b BGPConfig) allowedPrefix(p string) (netip.Prefix, error) {
	pf, err := netip.ParsePrefix(p)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("expected a prefix, got %q", p)
	}
	if pf.Masked() != pf {
		return netip.Prefix{}, fmt.Errorf("prefix %s has host bits set", p)
	}
	for _, s := range b.AllowedPrefixes {
		ap, err := netip.ParsePrefix(s)
		if err == nil && ap.Addr().Is4() == pf.Addr().Is4() && ap.Bits() <= pf.Bits() && ap.Contains(pf.Addr()) {
			return pf, nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("prefix %s is outside the allowed prefixes %v", p, b.AllowedPrefixes)
}

func (b BGPConfig) checkRoute(a BGPRoute) error {
	pf, err := b.allowedPrefix(a.Prefix)
	if err != nil {
		return err
	}
	if pf.Addr().Is4() && b.NextHop == "" || pf.Addr().Is6() && b.NextHop6 == "" {
		return fmt.Errorf("prefix %s: set next_hop (IPv4) or next_hop6 (IPv6)", a.Prefix)
	}
	if a.Prepend < 0 || a.Prepend > 10 {
		return fmt.Errorf("prepend: expected 0 to 10, got %d", a.Prepend)
	}
	for _, c := range a.Communities {
		if _, err := parseCommunity(c); err != nil {
			return err
		}
	}
	return nil
}

func parseCommunity(s string) (uint32, error) {
	a, b, ok := strings.Cut(s, ":")
	if !ok {
		return 0, fmt.Errorf("community: expected ASN:VALUE, got %q", s)
	}
	x, err1 := strconv.ParseUint(a, 10, 16)
	y, err2 := strconv.ParseUint(b, 10, 16)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("community: expected two 16-bit numbers ASN:VALUE, got %q", s)
	}
	return uint32(x)<<16 | uint32(y), nil
}

func (w WebhookConfig) validate(r *config.Reporter) {
	for _, name := range sortedKeys(w.Endpoints) {
		e := w.Endpoints[name]
		er := r.Sub("endpoints." + name)
		if err := w.allowed(e.URL); err != nil {
			er.Errorf("url", "%v", err)
		}
		if !e.Secret.IsSet() {
			er.Errorf("secret", "expected secret_file or secret_env (whsec_<base64>)")
		} else {
			e.Secret.Validate(er.Sub("secret"))
			if v, err := e.Secret.Resolve(); err == nil {
				if _, err := webhookKey(v); err != nil {
					er.Errorf("secret", "%v", err)
				}
			}
		}
		if e.Timeout < 0 || e.Attempts < 0 || e.Backoff < 0 {
			er.Errorf("", "timeout, attempts and backoff must not be negative")
		}
	}
}

// allowed checks a webhook URL against the destination allowlist.
func (w WebhookConfig) allowed(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("expected an http or https URL")
	}
	if u.User != nil {
		return fmt.Errorf("credentials in the URL are not allowed; use the signing secret")
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	for _, a := range w.Allow {
		ah, ap, err := net.SplitHostPort(a)
		if err != nil {
			ah, ap = a, ""
		}
		if strings.EqualFold(strings.Trim(ah, "[]"), host) && (ap == "" || ap == "*" || ap == port) {
			return nil
		}
	}
	return fmt.Errorf("destination %s:%s is not in webhook.allow", host, port)
}

func webhookKey(secret string) ([]byte, error) {
	b64, ok := strings.CutPrefix(secret, "whsec_")
	if !ok {
		return nil, fmt.Errorf("expected a secret of the form whsec_<base64>")
	}
	k, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(k) < 16 {
		return nil, fmt.Errorf("expected a secret of the form whsec_<base64> with at least 16 bytes of key")
	}
	return k, nil
}
