// Package zktest gives tests a real ZooKeeper: Debian's zookeeper package
// (/usr/share/java/zookeeper.jar) run standalone on a free loopback port,
// with its data in a temporary directory.
//
// When ZooKeeper or Java is missing the test skips — except under CI=true,
// where it fails (peer.Unavailable).
package zktest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/meridian-obs/meridian/internal/testutil/peer"
)

// Jar is where Debian's zookeeper package puts the server.
const Jar = "/usr/share/java/zookeeper.jar"

// Server is one standalone ZooKeeper.
type Server struct {
	// Addr is "127.0.0.1:port", the client address.
	Addr string
	// Dir holds zoo.cfg, the data and the server's log (zookeeper.log).
	Dir string

	mu  sync.Mutex
	cmd *exec.Cmd
}

// Start starts a ZooKeeper for the test; it is killed when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	dir, err := os.MkdirTemp("", "meridian-zktest-")
	if err != nil {
		t.Fatal(err)
	}
	s, err := StartIn(dir)
	if err != nil {
		os.RemoveAll(dir)
		peer.Unavailable(t, "no ZooKeeper: %v", err)
		return nil
	}
	t.Cleanup(func() { s.Kill(); os.RemoveAll(dir) })
	return s
}

// StartIn starts a ZooKeeper whose files live in dir, for fixtures shared
// by a whole test binary (the caller kills it and removes dir).
func StartIn(dir string) (*Server, error) {
	if _, err := exec.LookPath("java"); err != nil {
		return nil, fmt.Errorf("java: %w (apt-get install zookeeper)", err)
	}
	if _, err := os.Stat(Jar); err != nil {
		return nil, fmt.Errorf("%s: %w (apt-get install zookeeper)", Jar, err)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &Server{Addr: fmt.Sprintf("127.0.0.1:%d", port), Dir: dir}
	cfg := strings.Join([]string{
		"tickTime=500",
		"dataDir=" + filepath.Join(dir, "data"),
		fmt.Sprintf("clientPort=%d", port),
		"clientPortAddress=127.0.0.1",
		"admin.enableServer=false",
		"minSessionTimeout=1000",
		"maxSessionTimeout=60000",
		"maxClientCnxns=0",
		"4lw.commands.whitelist=ruok,srvr,mntr",
		"",
	}, "\n")
	if err := os.WriteFile(filepath.Join(dir, "zoo.cfg"), []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	if err := s.start(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Server) start() error {
	logf, err := os.OpenFile(filepath.Join(s.Dir, "zookeeper.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command("java", "-Xmx256m", "-XX:+UseSerialGC", "-Dzookeeper.log.dir="+s.Dir,
		"-Dzookeeper.admin.enableServer=false",
		"-cp", "/etc/zookeeper/conf:"+Jar,
		"org.apache.zookeeper.server.ZooKeeperServerMain", filepath.Join(s.Dir, "zoo.cfg"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return fmt.Errorf("zookeeper exited at start; see %s", filepath.Join(s.Dir, "zookeeper.log"))
		default:
		}
		if s.Ruok() {
			s.mu.Lock()
			s.cmd = cmd
			s.mu.Unlock()
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	return fmt.Errorf("zookeeper did not answer ruok on %s within 60 s", s.Addr)
}

// Ruok reports whether the server answers the "ruok" four-letter word.
func (s *Server) Ruok() bool {
	c, err := net.DialTimeout("tcp", s.Addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("ruok")); err != nil {
		return false
	}
	line, _ := bufio.NewReader(c).ReadString('\n')
	return strings.HasPrefix(line, "imok")
}

// Kill stops the server with SIGKILL (its data stays, for Restart).
func (s *Server) Kill() {
	s.mu.Lock()
	cmd := s.cmd
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	for i := 0; i < 100 && s.Ruok(); i++ {
		time.Sleep(50 * time.Millisecond)
	}
}

// Restart starts the server again on the same port with the same data.
func (s *Server) Restart() error {
	s.Kill()
	return s.start()
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
