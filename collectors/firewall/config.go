package firewall

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/meridian-obs/meridian/internal/config"
	"github.com/meridian-obs/meridian/pipeline/record"
)

// Config is the `firewall` section.
type Config struct {
	Syslog SyslogConfig `yaml:"syslog"`
	// NetfilterPrefixes maps iptables/nftables LOG prefixes to actions;
	// without a match the action comes from words in the prefix (DROP,
	// REJECT, DENY/BLOCK, ACCEPT/ALLOW/PERMIT), else "unknown".
	NetfilterPrefixes []PrefixAction `yaml:"netfilter_prefixes"`
	// Devices gives region and site by device name (syslog hostname, or the
	// sender's address when the line has none).
	Devices []DeviceConfig `yaml:"devices"`
	// Networks gives region and site by the sender's address (longest
	// prefix), for devices not listed by name.
	Networks []NetworkConfig `yaml:"networks"`
}

// SyslogConfig is the `firewall.syslog` section. An empty address turns that
// listener off; with all three empty the collector does nothing.
type SyslogConfig struct {
	UDP string    `yaml:"udp"`
	TCP string    `yaml:"tcp"`
	TLS TLSConfig `yaml:"tls"`
	// MaxLineBytes bounds one message; longer ones are counted (too_long)
	// and skipped.
	MaxLineBytes int `yaml:"max_line_bytes"`
	// MaxConnections bounds concurrent TCP+TLS connections; more are closed
	// at once and counted (too_many_connections).
	MaxConnections int `yaml:"max_connections"`
	// IdleTimeout closes a TCP connection that sent nothing for this long.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// BatchRows and BatchWindow bound a batch handed to the pipeline: a
	// reader flushes when it has BatchRows rows, when its socket has no more
	// data buffered, or BatchWindow after the batch's first row (UDP).
	BatchRows   int           `yaml:"batch_rows"`
	BatchWindow time.Duration `yaml:"batch_window"`
	// UDPReadBufferBytes sizes the kernel receive buffer (SO_RCVBUF).
	UDPReadBufferBytes int `yaml:"udp_read_buffer_bytes"`
	// UDPReaders is the number of UDP sockets bound to the same address
	// with SO_REUSEPORT, each with its own reader (the kernel spreads
	// senders over them).
	UDPReaders int `yaml:"udp_readers"`
}

// TLSConfig is syslog over TLS (RFC 5425 framing, i.e. octet counting, or
// newline framing: both are detected).
type TLSConfig struct {
	Listen string        `yaml:"listen"`
	Cert   string        `yaml:"cert"` // PEM certificate chain path
	Key    config.Secret `yaml:"key"`  // PEM private key: key_file: PATH
}

// DeviceConfig locates a device by name.
type DeviceConfig struct {
	Name   string `yaml:"name"`
	Region string `yaml:"region"`
	Site   string `yaml:"site"`
}

// NetworkConfig locates senders by address.
type NetworkConfig struct {
	CIDR   string `yaml:"cidr"`
	Region string `yaml:"region"`
	Site   string `yaml:"site"`
}

// DefaultConfig returns the defaults: all listeners off.
func DefaultConfig() Config {
	return Config{Syslog: SyslogConfig{
		MaxLineBytes:       64 << 10,
		MaxConnections:     512,
		IdleTimeout:        10 * time.Minute,
		BatchRows:          2048,
		BatchWindow:        200 * time.Millisecond,
		UDPReadBufferBytes: 8 << 20,
		UDPReaders:         1,
	}}
}

// Enabled reports whether any listener is configured.
func (c Config) Enabled() bool {
	return c.Syslog.UDP != "" || c.Syslog.TCP != "" || c.Syslog.TLS.Listen != ""
}

func validAction(a string) bool {
	switch a {
	case record.ActionAllow, record.ActionDeny, record.ActionDrop, record.ActionReject:
		return true
	}
	return false
}

// Validate implements config.Validator.
func (c Config) Validate(r *config.Reporter) {
	s := r.Sub("syslog")
	for _, kv := range [][2]string{{"udp", c.Syslog.UDP}, {"tcp", c.Syslog.TCP}, {"tls.listen", c.Syslog.TLS.Listen}} {
		if kv[1] == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(kv[1]); err != nil {
			s.Errorf(kv[0], "expected host:port, got %q", kv[1])
		}
	}
	if c.Syslog.TLS.Listen != "" {
		if c.Syslog.TLS.Cert == "" {
			s.Errorf("tls.cert", "expected the path of a PEM certificate when tls.listen is set")
		}
		if !c.Syslog.TLS.Key.IsSet() {
			s.Errorf("tls.key", "expected key_file: PATH of a PEM private key when tls.listen is set")
		}
		c.Syslog.TLS.Key.Validate(s.Sub("tls.key"))
		if c.Syslog.TLS.Cert != "" && c.Syslog.TLS.Key.IsSet() {
			if _, err := loadKeyPair(c.Syslog.TLS); err != nil {
				s.Errorf("tls", "%v", err)
			}
		}
	}
	if c.Syslog.MaxLineBytes < 480 || c.Syslog.MaxLineBytes > 16<<20 {
		s.Errorf("max_line_bytes", "expected 480 to 16777216 bytes, got %d", c.Syslog.MaxLineBytes)
	}
	if c.Syslog.MaxConnections < 1 {
		s.Errorf("max_connections", "expected at least 1, got %d", c.Syslog.MaxConnections)
	}
	if c.Syslog.IdleTimeout <= 0 {
		s.Errorf("idle_timeout", "expected a positive duration, got %s", c.Syslog.IdleTimeout)
	}
	if c.Syslog.BatchRows < 1 || c.Syslog.BatchRows > 100_000 {
		s.Errorf("batch_rows", "expected 1 to 100000, got %d", c.Syslog.BatchRows)
	}
	if c.Syslog.BatchWindow <= 0 {
		s.Errorf("batch_window", "expected a positive duration, got %s", c.Syslog.BatchWindow)
	}
	if c.Syslog.UDPReadBufferBytes < 0 {
		s.Errorf("udp_read_buffer_bytes", "expected 0 (system default) or more, got %d", c.Syslog.UDPReadBufferBytes)
	}
	if c.Syslog.UDPReaders < 1 || c.Syslog.UDPReaders > 64 {
		s.Errorf("udp_readers", "expected 1 to 64, got %d", c.Syslog.UDPReaders)
	}
	for i, p := range c.NetfilterPrefixes {
		if p.Prefix == "" {
			r.Index("netfilter_prefixes", i).Errorf("prefix", "expected a non-empty log prefix")
		}
		if !validAction(p.Action) {
			r.Index("netfilter_prefixes", i).Errorf("action", "expected allow, deny, drop or reject, got %q", p.Action)
		}
		if p.Vendor != "" && p.Vendor != "iptables" && p.Vendor != "nftables" {
			r.Index("netfilter_prefixes", i).Errorf("vendor", "expected iptables or nftables, got %q", p.Vendor)
		}
	}
	seen := map[string]bool{}
	for i, d := range c.Devices {
		if d.Name == "" {
			r.Index("devices", i).Errorf("name", "expected a device name")
		} else if seen[d.Name] {
			r.Index("devices", i).Errorf("name", "duplicate device %q", d.Name)
		}
		seen[d.Name] = true
	}
	for i, n := range c.Networks {
		if _, err := netip.ParsePrefix(n.CIDR); err != nil {
			r.Index("networks", i).Errorf("cidr", "expected a CIDR such as 10.0.0.0/8 or 2001:db8::/32, got %q", n.CIDR)
		}
	}
}

// loadKeyPair reads the TLS certificate and key. Errors never hold the key.
func loadKeyPair(c TLSConfig) (tls.Certificate, error) {
	key, err := c.Key.Resolve()
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("key: %w", err)
	}
	certPEM, err := os.ReadFile(c.Cert)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("cert: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, []byte(key))
	if err != nil {
		return tls.Certificate{}, errors.New("cert and key are not a PEM certificate and its private key")
	}
	return cert, nil
}
