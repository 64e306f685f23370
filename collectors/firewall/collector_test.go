package firewall

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/meridian-obs/meridian/internal/config"
	"github.com/meridian-obs/meridian/internal/testutil/chtest"
	"github.com/meridian-obs/meridian/pipeline/record"
)

func TestMain(m *testing.M) { chtest.Main(m) }

// capture is a record.Sink that keeps every row and every batch size.
type capture struct {
	mu      sync.Mutex
	rows    []record.FirewallEvent
	batches []int
}

func (c *capture) Write(_ context.Context, rows []record.FirewallEvent) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rows = append(c.rows, rows...)
	c.batches = append(c.batches, len(rows))
	return nil
}

func (c *capture) snapshot() []record.FirewallEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]record.FirewallEvent(nil), c.rows...)
}

// waitRows waits until the sink holds n rows (or 15 s pass) and returns them.
func (c *capture) waitRows(t *testing.T, n int) []record.FirewallEvent {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if rows := c.snapshot(); len(rows) >= n {
			return rows
		}
		time.Sleep(20 * time.Millisecond)
	}
	rows := c.snapshot()
	t.Fatalf("got %d rows, want %d", len(rows), n)
	return nil
}

func testCollector(t *testing.T, mut func(*Config)) (*Collector, *capture, *prometheus.Registry) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Syslog.UDP = "127.0.0.1:0"
	cfg.Syslog.TCP = "127.0.0.1:0"
	cfg.Syslog.BatchWindow = 20 * time.Millisecond
	cfg.Syslog.UDPReaders = 2 // SO_REUSEPORT: every test runs with two UDP sockets
	cfg.NetfilterPrefixes = []PrefixAction{{Prefix: "LOG-ACCEPT", Action: record.ActionAllow}}
	cfg.Devices = []DeviceConfig{{Name: "fw-east", Region: "us-east", Site: "iad1"}}
	cfg.Networks = []NetworkConfig{{CIDR: "127.0.0.0/8", Region: "lo-region", Site: "lo-site"}}
	if mut != nil {
		mut(&cfg)
	}
	r := config.NewReporter()
	cfg.Validate(r)
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	sink := &capture{}
	reg := prometheus.NewRegistry()
	c, err := New(cfg, Deps{Registry: reg, Sink: sink})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop(context.Background()) })
	return c, sink, reg
}

// Message bodies, one per format; logger adds the syslog header.
var bodies = []struct{ tag, body, format string }{
	{"kernel", "[ 9912.123456] DROP-WAN: IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00 SRC=203.0.113.9 DST=198.51.100.2 LEN=60 TOS=0x00 PREC=0x00 TTL=52 ID=54321 DF PROTO=TCP SPT=%d DPT=22 WINDOW=64240 RES=0x00 SYN URGP=0", FormatIPTables},
	{"kernel", "LOG-ACCEPT IN=eth1 OUT=eth0 SRC=2001:db8::5 DST=2001:db8:1::9 LEN=104 TC=0 HOPLIMIT=63 FLOWLBL=0 PROTO=UDP SPT=%d DPT=53 LEN=64", FormatIPTables},
	{"panos", `1,2024/01/15 10:00:01,012801096514,TRAFFIC,end,2560,2024/01/15 10:00:01,10.1.1.10,8.8.8.8,203.0.113.5,8.8.8.8,"allow, dns {out}",,,dns-base,vsys1,trust,untrust,ethernet1/2,ethernet1/1,default,,12345,1,%d,53,40001,53,0x400019,udp,allow,220,90,130,2,2024/01/15 09:59:59,0,any,,7301234567890,0x0,10.0.0.0-10.255.255.255,United States,,1,1,aged-out`, FormatPANOS},
	{"asa", `%%ASA-4-106023: Deny tcp src outside:198.51.100.7/%d dst inside:10.0.0.5/22 by access-group "outside_in" [0x0, 0x0]`, FormatASA},
	{"asa", `%%ASA-6-302014: Teardown TCP connection 4711 for outside:198.51.100.7/%d to inside:10.0.0.5/443 duration 0:00:30 bytes 6543 TCP FINs`, FormatASA},
	{"fgt", `date=2024-01-15 time=10:00:01 devname="fw-east" logid="0000000013" type="traffic" subtype="forward" srcip=10.1.1.10 srcport=%d srcintf="port2" dstip=8.8.8.8 dstport=53 dstintf="wan1" proto=17 action="deny" policyid=3 policyname="lan out" sentbyte=90 rcvdbyte=0 sentpkt=1 rcvdpkt=0`, FormatFortiGate},
	{"sshd", "Accepted publickey for root from 192.0.2.1 port %d", FormatUnknown},
}

// TestLogger sends every format with util-linux logger over UDP and TCP, in
// RFC 3164 and RFC 5424, with newline and octet-counting framing; every line
// must arrive, parsed.
func TestLogger(t *testing.T) {
	bin, err := exec.LookPath("logger")
	if err != nil {
		chtest.Unavailable(t, "logger (bsdutils) not installed: %v", err)
	}
	c, sink, reg := testCollector(t, nil)
	if len(c.udp) != 2 || c.udp[0].LocalAddr().String() != c.udp[1].LocalAddr().String() {
		t.Fatalf("udp sockets: %d", len(c.udp))
	}
	const perBody = 20
	modes := []struct {
		name string
		args []string
		addr string
	}{
		{"udp-3164", []string{"--rfc3164", "-d"}, c.UDPAddr()},
		{"udp-5424", []string{"--rfc5424", "-d"}, c.UDPAddr()},
		{"tcp-3164", []string{"--rfc3164", "-T"}, c.TCPAddr()},
		{"tcp-5424-octet", []string{"--rfc5424", "-T", "--octet-count", "--sd-id", "meta@32473", "--sd-param", `seq="1\]x"`}, c.TCPAddr()},
	}
	dir := t.TempDir()
	want := 0
	port := 1000
	expectFormat := map[string]string{} // port marker → format
	for _, m := range modes {
		for _, b := range bodies {
			var lines []string
			for i := 0; i < perBody; i++ {
				port++
				lines = append(lines, fmt.Sprintf(b.body, port))
				expectFormat[fmt.Sprint(port)] = b.format
			}
			f := filepath.Join(dir, m.name+b.tag+".txt")
			if err := os.WriteFile(f, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			host, p, _ := net.SplitHostPort(m.addr)
			args := append([]string{"-n", host, "-P", p, "-t", b.tag, "-S", "4096", "-f", f}, m.args...)
			if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
				t.Fatalf("logger %v: %v\n%s", args, err, out)
			}
			want += perBody
			if strings.HasPrefix(m.name, "udp") {
				time.Sleep(5 * time.Millisecond) // pace UDP a little: loopback buffers are finite
			}
		}
	}
	rows := sink.waitRows(t, want)
	if len(rows) != want {
		t.Fatalf("got %d rows, want %d", len(rows), want)
	}
	seen := map[string]bool{}
	for _, r := range rows {
		// Find the marker port in the raw line to know the expected format.
		var marker string
		for p := range expectFormat {
			if strings.Contains(r.Raw, "="+p+" ") || strings.Contains(r.Raw, "/"+p+" ") || strings.Contains(r.Raw, ","+p+",") || strings.Contains(r.Raw, "port "+p) {
				marker = p
				break
			}
		}
		if marker == "" {
			t.Errorf("row without marker: %q", r.Raw)
			continue
		}
		if seen[marker] {
			t.Errorf("line %s arrived twice", marker)
		}
		seen[marker] = true
		if r.Format != expectFormat[marker] {
			t.Errorf("line %s: format %q, want %q: %q", marker, r.Format, expectFormat[marker], r.Raw)
		}
		if r.Device == "" || r.ReceivedAt.IsZero() || r.Time.IsZero() {
			t.Errorf("line %s: device %q received %v time %v", marker, r.Device, r.ReceivedAt, r.Time)
		}
		if r.Format != FormatUnknown && (!r.SrcAddr.IsValid() || r.Action == record.ActionUnknown) {
			t.Errorf("line %s: src %v action %q", marker, r.SrcAddr, r.Action)
		}
		if r.Device == "fw-east" && r.Region != "us-east" {
			t.Errorf("device enrichment: region %q", r.Region)
		} else if r.Device != "fw-east" && r.Region != "lo-region" {
			t.Errorf("network enrichment: device %q region %q", r.Device, r.Region)
		}
	}
	if len(seen) != want {
		t.Errorf("%d distinct lines, want %d", len(seen), want)
	}
	if got := testutil.ToFloat64(c.m.lines.WithLabelValues(FormatASA)); got != float64(2*perBody*len(modes)) {
		t.Errorf("lines_total{asa} = %v", got)
	}
	if n, err := testutil.GatherAndCount(reg, "meridian_firewall_malformed_total"); err != nil || n != 0 {
		t.Errorf("malformed series %d (%v), want none for clean logger input", n, err)
	}
	sink.mu.Lock()
	nb := len(sink.batches)
	sink.mu.Unlock()
	t.Logf("%d rows in %d batches", want, nb)
}

// Garbage between good lines: counted per source and reason, good lines kept.
func TestBadInputTCP(t *testing.T) {
	c, sink, _ := testCollector(t, func(c *Config) { c.Syslog.MaxLineBytes = 512 })
	conn, err := net.Dial("tcp", c.TCPAddr())
	if err != nil {
		t.Fatal(err)
	}
	good := "<13>Jan 15 10:00:01 fw-east asa: %ASA-4-106023: Deny udp src outside:198.51.100.7/53 dst inside:10.0.0.5/53 by access-group \"a\" [0x0, 0x0]\n"
	in := good +
		"\x00\x01\x02 binary garbage \xff\n" + // stored as unknown, header counted
		strings.Repeat("x", 2000) + "\n" + // too long: skipped, counted
		"\n" + // empty
		good
	if _, err := conn.Write([]byte(in)); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	sink.waitRows(t, 3)
	time.Sleep(50 * time.Millisecond) // and nothing more arrives
	rows := sink.snapshot()
	if len(rows) != 3 || rows[0].Format != FormatASA || rows[2].Format != FormatASA || rows[1].Format != FormatUnknown {
		t.Fatalf("rows: %+v", rows)
	}
	if rows[1].Device != "127.0.0.1" || rows[1].Raw != "\x00\x01\x02 binary garbage \xff" {
		t.Errorf("garbage row device %q raw %q", rows[1].Device, rows[1].Raw)
	}
	for reason, want := range map[string]float64{ReasonTooLong: 1, ReasonEmpty: 1, ReasonNoHeader: 1} {
		if got := testutil.ToFloat64(c.m.malformed.WithLabelValues("127.0.0.1", reason)); got != want {
			t.Errorf("malformed{127.0.0.1,%s} = %v, want %v", reason, got, want)
		}
	}

	// Octet counting: a frame over the limit is skipped exactly, framing
	// survives; an unreadable count closes the connection, the frames before
	// it are kept.
	conn, err = net.Dial("tcp", c.TCPAddr())
	if err != nil {
		t.Fatal(err)
	}
	g := strings.TrimSuffix(good, "\n")
	big := strings.Repeat("y", 600)
	in = fmt.Sprintf("%d %s%d %s%d %sxx garbage", len(g), g, len(big), big, len(g), g)
	if _, err := conn.Write([]byte(in)); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	sink.waitRows(t, 5)
	deadline := time.Now().Add(5 * time.Second)
	for testutil.ToFloat64(c.m.malformed.WithLabelValues("127.0.0.1", ReasonBadFrame)) != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := testutil.ToFloat64(c.m.malformed.WithLabelValues("127.0.0.1", ReasonBadFrame)); got != 1 {
		t.Errorf("bad_frame = %v", got)
	}
	if got := testutil.ToFloat64(c.m.malformed.WithLabelValues("127.0.0.1", ReasonTooLong)); got != 2 {
		t.Errorf("too_long = %v, want 2", got)
	}
	if rows := sink.snapshot(); len(rows) != 5 || rows[3].Format != FormatASA || rows[4].Format != FormatASA {
		t.Errorf("rows after octet test: %d", len(rows))
	}
}

func TestMaxConnections(t *testing.T) {
	c, sink, _ := testCollector(t, func(c *Config) { c.Syslog.MaxConnections = 1 })
	first, err := net.Dial("tcp", c.TCPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if _, err := first.Write([]byte("<13>Jan 15 10:00:01 h app: one\n")); err != nil {
		t.Fatal(err)
	}
	sink.waitRows(t, 1)
	second, err := net.Dial("tcp", c.TCPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	_ = second.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := second.Read(make([]byte, 1)); err == nil {
		t.Error("second connection was not closed")
	}
	if got := testutil.ToFloat64(c.m.malformed.WithLabelValues("127.0.0.1", ReasonTooMany)); got != 1 {
		t.Errorf("too_many_connections = %v", got)
	}
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM := selfSigned(t)
	certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	c, sink, _ := testCollector(t, func(c *Config) {
		c.Syslog.TLS = TLSConfig{Listen: "127.0.0.1:0", Cert: certFile, Key: config.Secret{File: keyFile}}
	})
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	conn, err := tls.Dial("tcp", c.TLSAddr(), &tls.Config{RootCAs: pool, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	msg := `<134>1 2024-01-15T10:00:01Z fw-east - - - - date=2024-01-15 time=10:00:01 type="traffic" srcip=10.0.0.1 srcport=1 dstip=10.0.0.2 dstport=2 proto=6 action="accept" policyid=7`
	if _, err := fmt.Fprintf(conn, "%d %s%d %s", len(msg), msg, len(msg), msg); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	rows := sink.waitRows(t, 2)
	if rows[0].Format != FormatFortiGate || rows[0].Rule != "7" || rows[0].Region != "us-east" {
		t.Errorf("tls row: %+v", rows[0])
	}
	// A plaintext client on the TLS port: counted, no crash.
	raw, err := net.Dial("tcp", c.TLSAddr())
	if err != nil {
		t.Fatal(err)
	}
	_, _ = raw.Write([]byte("<13>Jan 15 10:00:01 h app: plaintext\n"))
	_ = raw.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _ = raw.Read(make([]byte, 64))
	raw.Close()
	deadline := time.Now().Add(5 * time.Second)
	for testutil.ToFloat64(c.m.malformed.WithLabelValues("127.0.0.1", ReasonTLS)) != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := testutil.ToFloat64(c.m.malformed.WithLabelValues("127.0.0.1", ReasonTLS)); got != 1 {
		t.Errorf("tls_handshake = %v", got)
	}
}

func selfSigned(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd})
}

func TestConfigValidate(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Syslog.UDP = "nonsense"
	cfg.Syslog.TLS.Listen = "127.0.0.1:6514"
	cfg.NetfilterPrefixes = []PrefixAction{{Prefix: "", Action: "explode"}}
	cfg.Networks = []NetworkConfig{{CIDR: "10.0.0.0/33"}}
	cfg.Devices = []DeviceConfig{{Name: "a"}, {Name: "a"}}
	r := config.NewReporter()
	r.Validate("firewall", cfg)
	err := r.Err()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"firewall.syslog.udp", "firewall.syslog.tls.cert", "firewall.syslog.tls.key",
		"firewall.netfilter_prefixes[0].prefix", "firewall.netfilter_prefixes[0].action", "firewall.networks[0].cidr", "firewall.devices[1].name"} {
		if !strings.Contains(err.Error(), want+":") {
			t.Errorf("missing %s in:\n%v", want, err)
		}
	}
	r = config.NewReporter()
	r.Validate("firewall", DefaultConfig())
	if err := r.Err(); err != nil {
		t.Errorf("defaults invalid: %v", err)
	}
}

// UDP: a datagram may carry several lines; garbage and oversize lines are
// counted per source, the good ones around them kept; IPv6 loopback works.
func TestBadInputUDP(t *testing.T) {
	c, sink, _ := testCollector(t, func(c *Config) {
		c.Syslog.UDP = "[::1]:0"
		c.Syslog.TCP = ""
		c.Syslog.MaxLineBytes = 512
	})
	conn, err := net.Dial("udp", c.UDPAddr())
	if err != nil {
		chtest.Unavailable(t, "no IPv6 loopback: %v", err)
	}
	defer conn.Close()
	good := `<14>1 2024-01-15T10:00:01Z - - - - - date=2024-01-15 time=10:00:01 type="traffic" srcip=2001:db8::1 srcport=1 dstip=2001:db8::2 dstport=443 proto=6 action="deny" policyid=9`
	for _, d := range []string{good, "\xff\xfe garbage\n" + good + "\n", strings.Repeat("z", 1000), ""} {
		if _, err := conn.Write([]byte(d)); err != nil {
			t.Fatal(err)
		}
	}
	rows := sink.waitRows(t, 3)
	if rows[0].Format != FormatFortiGate || rows[1].Format != FormatUnknown || rows[2].Format != FormatFortiGate {
		t.Fatalf("formats %s %s %s", rows[0].Format, rows[1].Format, rows[2].Format)
	}
	if rows[0].Device != "::1" || rows[0].SrcAddr != ip("2001:db8::1") || rows[0].Action != record.ActionDeny {
		t.Errorf("row: device %q src %v action %q", rows[0].Device, rows[0].SrcAddr, rows[0].Action)
	}
	deadline := time.Now().Add(5 * time.Second)
	for testutil.ToFloat64(c.m.malformed.WithLabelValues("::1", ReasonTooLong)) != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := testutil.ToFloat64(c.m.malformed.WithLabelValues("::1", ReasonTooLong)); got != 1 {
		t.Errorf("too_long{::1} = %v", got)
	}
	if got := testutil.ToFloat64(c.m.malformed.WithLabelValues("::1", ReasonNoHeader)); got != 1 {
		t.Errorf("no_header{::1} = %v", got)
	}
}

func TestParseUDPDrops(t *testing.T) {
	data := []byte(`   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  123: 0100007F:159A 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4242 2 0000000000000000 17
  124: 0100007F:159A 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4243 2 0000000000000000 5
  125: 0100007F:159B 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 9999 2 0000000000000000 1000
`)
	if got := parseUDPDrops(data, map[uint64]bool{4242: true, 4243: true}); got != 22 {
		t.Errorf("drops %d, want 22", got)
	}
}

// The kernel drop counter finds the collector's own sockets.
func TestKernelDropsMetric(t *testing.T) {
	c, _, reg := testCollector(t, nil)
	if len(c.inodes) != 2 {
		t.Fatalf("%d socket inodes, want 2", len(c.inodes))
	}
	if n, err := testutil.GatherAndCount(reg, "meridian_firewall_udp_kernel_drops_total"); err != nil || n != 1 {
		t.Errorf("kernel drops metric: %d series, %v", n, err)
	}
	// Our sockets are in /proc/net/udp: their inodes appear there.
	data, err := os.ReadFile("/proc/net/udp")
	if err != nil {
		t.Skip("no /proc/net/udp")
	}
	for ino := range c.inodes {
		if !strings.Contains(string(data), " "+strconv.FormatUint(ino, 10)+" ") {
			t.Errorf("inode %d not in /proc/net/udp", ino)
		}
	}
}
