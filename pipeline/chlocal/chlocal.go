// Package chlocal runs a private clickhouse-server as a child process: the
// embedded default store of `meridian serve` when no ClickHouse address is
// configured, and the server the tests start for themselves.
package chlocal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/meridian-obs/meridian/internal/config"
)

// Config of the managed server.
type Config struct {
	// Binary is the clickhouse-server executable; looked up in PATH and
	// /usr/sbin, /usr/bin when empty.
	Binary string `yaml:"binary"`
	// Dir holds the server's data, logs and generated configuration.
	// Relative to the server's state directory when not absolute.
	Dir string `yaml:"dir"`
	// TCPPort is the native protocol port on 127.0.0.1; 0 picks a free port.
	TCPPort int `yaml:"tcp_port"`
	// HTTPPort is the HTTP port on 127.0.0.1; 0 picks a free port.
	HTTPPort int `yaml:"http_port"`
	// StartTimeout bounds the wait until the server answers.
	StartTimeout time.Duration `yaml:"start_timeout"`
	// MaxMemoryUsage per query in bytes.
	MaxMemoryUsage int64 `yaml:"max_memory_usage"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Dir:            "clickhouse",
		TCPPort:        19000,
		HTTPPort:       18123,
		StartTimeout:   60 * time.Second,
		MaxMemoryUsage: 4 << 30,
	}
}

// Validate implements config.Validator.
func (c Config) Validate(r *config.Reporter) {
	if c.TCPPort < 0 || c.TCPPort > 65535 {
		r.Errorf("tcp_port", "expected a port from 0 to 65535, got %d", c.TCPPort)
	}
	if c.HTTPPort < 0 || c.HTTPPort > 65535 {
		r.Errorf("http_port", "expected a port from 0 to 65535, got %d", c.HTTPPort)
	}
	if c.StartTimeout <= 0 {
		r.Errorf("start_timeout", "expected a positive duration, got %s", c.StartTimeout)
	}
}

// ErrNotInstalled is returned when no clickhouse-server binary is found.
var ErrNotInstalled = errors.New("clickhouse-server is not installed: install it with `apt-get install -y clickhouse-server` " +
	"(Debian), or set clickhouse.addr to an existing server")

// FindBinary returns the clickhouse-server path or ErrNotInstalled.
func FindBinary(configured string) (string, error) {
	if configured != "" {
		if _, err := os.Stat(configured); err != nil {
			return "", fmt.Errorf("clickhouse-server binary %s: %w", configured, err)
		}
		return configured, nil
	}
	if p, err := exec.LookPath("clickhouse-server"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server", "/usr/bin/clickhouse"} {
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	return "", ErrNotInstalled
}

// Server is a running child clickhouse-server.
type Server struct {
	cfg     Config
	log     *slog.Logger
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
	Addr    string // 127.0.0.1:TCPPort
}

// New prepares a server; it does no I/O.
func New(cfg Config, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	return &Server{cfg: cfg, log: log.With("component", "chlocal")}
}

// Start writes the configuration, starts the child and waits until it
// accepts connections on its native port.
func (s *Server) Start(ctx context.Context) error {
	bin, err := FindBinary(s.cfg.Binary)
	if err != nil {
		return err
	}
	dir, err := filepath.Abs(s.cfg.Dir)
	if err != nil {
		return err
	}
	for _, sub := range []string{"data", "tmp", "user_files", "format_schemas", "log"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o750); err != nil {
			return fmt.Errorf("clickhouse state directory: %w", err)
		}
	}
	if s.cfg.TCPPort == 0 {
		if s.cfg.TCPPort, err = FreePort(); err != nil {
			return err
		}
	}
	if s.cfg.HTTPPort == 0 {
		if s.cfg.HTTPPort, err = FreePort(); err != nil {
			return err
		}
	}
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.cfg.TCPPort))
	if conn, err := net.DialTimeout("tcp", s.Addr, 200*time.Millisecond); err == nil {
		conn.Close()
		return fmt.Errorf("managed clickhouse: port %d on 127.0.0.1 is already in use (another clickhouse-server or meridian?); "+
			"set clickhouse.managed.tcp_port or clickhouse.addr", s.cfg.TCPPort)
	}
	if err := s.writeConfig(dir); err != nil {
		return err
	}
	// The lock file of a server killed without cleanup makes the next start fail.
	_ = os.Remove(filepath.Join(dir, "data", "status"))

	stderr, err := os.OpenFile(filepath.Join(dir, "log", "stderr.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, "--config-file="+filepath.Join(dir, "config.xml"))
	cmd.Dir = dir
	cmd.Stdout = stderr
	cmd.Stderr = stderr
	// Its own process group: a Ctrl-C at the terminal reaches Meridian, which
	// then stops the child in order, after flushing.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		stderr.Close()
		return fmt.Errorf("start %s: %w", bin, err)
	}
	s.cmd = cmd
	s.done = make(chan struct{})
	go func() {
		s.waitErr = cmd.Wait()
		stderr.Close()
		close(s.done)
	}()
	s.log.Info("started managed clickhouse-server", "pid", cmd.Process.Pid, "addr", s.Addr, "dir", dir)

	deadline := time.Now().Add(s.cfg.StartTimeout)
	for {
		if conn, err := net.DialTimeout("tcp", s.Addr, 200*time.Millisecond); err == nil {
			conn.Close()
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("managed clickhouse-server exited during start (%v); see %s", s.waitErr,
				filepath.Join(dir, "log"))
		case <-ctx.Done():
			_ = s.Stop(context.Background())
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = s.Stop(context.Background())
			return fmt.Errorf("managed clickhouse-server did not answer on %s within %s; see %s", s.Addr,
				s.cfg.StartTimeout, filepath.Join(dir, "log"))
		}
	}
}

// Stop sends SIGTERM and waits for the exit (SIGKILL when ctx ends first).
func (s *Server) Stop(ctx context.Context) error {
	if s.cmd == nil {
		return nil
	}
	select {
	case <-s.done:
		return nil
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(30 * time.Second)
	defer t.Stop()
	select {
	case <-s.done:
	case <-ctx.Done():
		_ = s.cmd.Process.Kill()
		<-s.done
	case <-t.C:
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	s.log.Info("stopped managed clickhouse-server")
	return nil
}

// Kill stops the server abruptly (tests of outages).
func (s *Server) Kill() {
	if s.cmd != nil {
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// Done is closed when the child exits.
func (s *Server) Done() <-chan struct{} { return s.done }

func (s *Server) writeConfig(dir string) error {
	x := func(v string) string { return html.EscapeString(v) }
	var b bytes.Buffer
	fmt.Fprintf(&b, `<?xml version="1.0"?>
<!-- Generated by meridian; rewritten at every start. -->
<yandex>
  <logger><level>warning</level><log>%s</log><errorlog>%s</errorlog><size>50M</size><count>3</count></logger>
  <tcp_port>%d</tcp_port>
  <http_port>%d</http_port>
  <listen_host>127.0.0.1</listen_host>
  <max_connections>1024</max_connections>
  <max_concurrent_queries>100</max_concurrent_queries>
  <uncompressed_cache_size>268435456</uncompressed_cache_size>
  <mark_cache_size>268435456</mark_cache_size>
  <path>%s/</path>
  <tmp_path>%s/</tmp_path>
  <user_files_path>%s/</user_files_path>
  <format_schema_path>%s/</format_schema_path>
  <users_config>%s</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mlock_executable>false</mlock_executable>
</yandex>
`, x(filepath.Join(dir, "log", "clickhouse.log")), x(filepath.Join(dir, "log", "clickhouse.err.log")),
		s.cfg.TCPPort, s.cfg.HTTPPort,
		x(filepath.Join(dir, "data")), x(filepath.Join(dir, "tmp")), x(filepath.Join(dir, "user_files")),
		x(filepath.Join(dir, "format_schemas")), x(filepath.Join(dir, "users.xml")))
	if err := os.WriteFile(filepath.Join(dir, "config.xml"), b.Bytes(), 0o640); err != nil {
		return err
	}
	users := fmt.Sprintf(`<?xml version="1.0"?>
<!-- Generated by meridian: the default user, loopback only. -->
<yandex>
  <profiles><default><max_memory_usage>%d</max_memory_usage></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks><profile>default</profile><quota>default</quota></default></users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
`, s.cfg.MaxMemoryUsage)
	return os.WriteFile(filepath.Join(dir, "users.xml"), []byte(users), 0o640)
}

// FreePort returns a currently free TCP port on 127.0.0.1.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
