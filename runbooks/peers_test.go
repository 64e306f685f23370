package runbooks

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/meridian-obs/meridian/internal/syncbuf"
	"github.com/meridian-obs/meridian/internal/testutil/chtest"
)

func TestMain(m *testing.M) { chtest.Main(m) }

// freePort returns a port free for both TCP and UDP on host.
func freePort(t testing.TB, host string) int {
	t.Helper()
	for i := 0; i < 50; i++ {
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			t.Fatalf("listen: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", net.JoinHostPort(host, fmt.Sprint(port)))
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatalf("no free port")
	return 0
}

// proc is a peer process started by a test.
type proc struct {
	cmd *exec.Cmd
	out *syncbuf.Buffer
}

func startProc(t testing.TB, name string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(name, args...), out: &syncbuf.Buffer{}}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() { p.stop() })
	return p
}

func (p *proc) stop() {
	if p.cmd.ProcessState != nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
}

func need(t testing.TB, bins ...string) {
	t.Helper()
	for _, b := range bins {
		if _, err := exec.LookPath(b); err != nil {
			chtest.Unavailable(t, "%s not installed (Debian package %s)", b, map[string]string{
				"named": "bind9", "tsig-keygen": "bind9", "dig": "bind9-dnsutils", "nsupdate": "bind9-dnsutils", "gobgpd": "gobgpd", "gobgp": "gobgpd"}[b])
		}
	}
}

// bind is a BIND 9 server with a TSIG key and the zone example.test.
type bind struct {
	addr    string
	port    int
	keyName string
	secret  string
	keyFile string
	proc    *proc
	dir     string
}

var secretRe = regexp.MustCompile(`secret "([^"]+)"`)

const testZone = "example.test."

func startBIND(t testing.TB) *bind {
	t.Helper()
	need(t, "named", "tsig-keygen", "dig")
	dir := t.TempDir()
	b := &bind{port: freePort(t, "127.0.0.1"), keyName: "meridian-key", dir: dir}
	b.addr = fmt.Sprintf("127.0.0.1:%d", b.port)
	key, err := exec.Command("tsig-keygen", "-a", "hmac-sha256", b.keyName).Output()
	if err != nil {
		t.Fatalf("tsig-keygen: %v", err)
	}
	b.secret = secretRe.FindStringSubmatch(string(key))[1]
	b.keyFile = filepath.Join(dir, "tsig.secret")
	must(t, os.WriteFile(filepath.Join(dir, "key.conf"), key, 0o600))
	must(t, os.WriteFile(b.keyFile, []byte(b.secret+"\n"), 0o600))
	zone := `$TTL 300
@ IN SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 60
@ IN NS ns.example.test.
ns IN A 127.0.0.1
edge-eu IN A 127.0.1.1
edge-eu IN A 127.0.1.2
edge-us IN A 127.0.2.1
edge-ap IN A 127.0.3.1
www IN CNAME edge-eu.example.test.
`
	must(t, os.WriteFile(filepath.Join(dir, "example.test.zone"), []byte(zone), 0o644))
	conf := fmt.Sprintf(`options {
	directory "%[1]s";
	listen-on port %[2]d { 127.0.0.1; };
	listen-on-v6 { none; };
	pid-file "%[1]s/named.pid";
	session-keyfile "%[1]s/session.key";
	recursion no;
	dnssec-validation no;
	notify no;
};
controls { };
include "%[1]s/key.conf";
zone "example.test" {
	type primary;
	file "%[1]s/example.test.zone";
	update-policy { grant %[3]s zonesub ANY; };
};
`, dir, b.port, b.keyName)
	must(t, os.WriteFile(filepath.Join(dir, "named.conf"), []byte(conf), 0o644))
	b.proc = startProc(t, "named", "-c", filepath.Join(dir, "named.conf"), "-u", "root", "-g", "-n", "1")
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if b.proc.cmd.ProcessState != nil {
			break
		}
		m := new(dns.Msg)
		m.SetQuestion("edge-us."+testZone, dns.TypeA)
		c := &dns.Client{Net: "tcp", Timeout: 500 * time.Millisecond}
		if r, _, err := c.Exchange(m, b.addr); err == nil && len(r.Answer) == 1 {
			return b
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("named did not start:\n%s", b.proc.out.String())
	return nil
}

// dig runs dig against the server and returns "TTL VALUE" lines, sorted.
func (b *bind) dig(t testing.TB, name, typ string) []string {
	t.Helper()
	out, err := exec.Command("dig", "@127.0.0.1", "-p", fmt.Sprint(b.port), "+tcp", "+norecurse", "+noall", "+answer", name, typ).CombinedOutput()
	if err != nil {
		t.Fatalf("dig: %v: %s", err, out)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(l)
		if len(f) >= 5 && strings.EqualFold(f[3], typ) {
			lines = append(lines, f[1]+" "+f[4])
		}
	}
	sortStrings(lines)
	return lines
}

func (b *bind) server() DNSServer {
	return DNSServer{Addr: b.addr, Zone: "example.test", TSIGName: b.keyName, TSIGAlgorithm: "hmac-sha256",
		TSIGSecret: secretFile(b.keyFile), Timeout: 2 * time.Second}
}

// gobgpPeer is a gobgpd peering with the embedded speaker.
type gobgpPeer struct {
	addr    string // the peer's address, 127.0.0.x
	port    int    // its BGP port
	apiPort int
	asn     uint32
	proc    *proc
}

func startGoBGP(t testing.TB, peerASN, speakerASN uint32, speakerAddr string) *gobgpPeer {
	t.Helper()
	need(t, "gobgpd", "gobgp")
	g := &gobgpPeer{addr: fmt.Sprintf("127.0.%d.%d", 100+rand.IntN(100), 2+rand.IntN(250)), asn: peerASN}
	g.port = freePort(t, g.addr)
	g.apiPort = freePort(t, "127.0.0.1")
	conf := fmt.Sprintf(`[global.config]
  as = %d
  router-id = "%s"
  port = %d
  local-address-list = ["%s"]

[[neighbors]]
  [neighbors.config]
    neighbor-address = "%s"
    peer-as = %d
  [neighbors.transport.config]
    passive-mode = true
  [neighbors.timers.config]
    hold-time = 9
    keepalive-interval = 3
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
`, g.asn, g.addr, g.port, g.addr, speakerAddr, speakerASN)
	f := filepath.Join(t.TempDir(), "gobgpd.toml")
	must(t, os.WriteFile(f, []byte(conf), 0o644))
	g.proc = startProc(t, "gobgpd", "-f", f, "--api-hosts", fmt.Sprintf("127.0.0.1:%d", g.apiPort), "--pprof-disable")
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := exec.Command("gobgp", "-p", fmt.Sprint(g.apiPort), "neighbor").CombinedOutput(); err == nil {
			return g
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("gobgpd did not start:\n%s", g.proc.out.String())
	return nil
}

// rib returns the peer's RIB line for prefix ("" when absent).
func (g *gobgpPeer) rib(t testing.TB, prefix string) string {
	t.Helper()
	args := []string{"-p", fmt.Sprint(g.apiPort), "global", "rib"}
	if strings.Contains(prefix, ":") {
		args = append(args, "-a", "ipv6")
	}
	out, err := exec.Command("gobgp", append(args, prefix)...).CombinedOutput()
	if err != nil {
		t.Fatalf("gobgp global rib: %v: %s", err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, prefix) {
			return strings.Join(strings.Fields(l), " ")
		}
	}
	return ""
}

// waitRIB waits until the RIB line of prefix satisfies ok.
func (g *gobgpPeer) waitRIB(t testing.TB, prefix string, what string, ok func(string) bool) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var line string
	for time.Now().Before(deadline) {
		if line = g.rib(t, prefix); ok(line) {
			return line
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("peer RIB for %s never showed %s; last: %q\ngobgpd:\n%s", prefix, what, line, g.proc.out.String())
	return ""
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func waitCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
