// Package nftloss injects ICMP echo-request loss towards one loopback
// address with Debian's nftables (`numgen random` drop) for tests, and reads
// back the exact number of packets dropped from the rule's counter.
package nftloss

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// Rule is an installed drop rule.
type Rule struct {
	table string
}

// Unavailable skips, or fails under CI=true.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true and a required peer is unavailable: %s", msg)
	}
	t.Skipf("skipped (set CI=true to make this a failure): %s", msg)
}

// Install drops percent% of ICMP echo requests to addr (an IPv4 loopback
// address) in a private table removed at cleanup. Without nft or root the
// test skips (fails under CI=true).
func Install(t testing.TB, addr string, percent int) *Rule {
	t.Helper()
	if _, err := exec.LookPath("nft"); err != nil {
		Unavailable(t, "nft not installed (Debian package nftables)")
	}
	if os.Geteuid() != 0 {
		Unavailable(t, "nftables needs root")
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	r := &Rule{table: "meridian_test_" + hex.EncodeToString(b)}
	rule := []string{"add", "rule", "inet", r.table, "c", "ip", "daddr", addr, "icmp", "type", "echo-request"}
	if percent < 100 {
		rule = append(rule, "numgen", "random", "mod", "100", "<", strconv.Itoa(percent))
	}
	rule = append(rule, "counter", "drop")
	// The input hook: the request is sent (sendmsg succeeds) and lost on
	// the way in, as on a real path. (An output-hook drop makes sendmsg
	// fail with EPERM, which probers see as a send error, not as loss.)
	cmds := [][]string{
		{"add", "table", "inet", r.table},
		{"add", "chain", "inet", r.table, "c", "{ type filter hook input priority 0; policy accept; }"},
		rule,
	}
	t.Cleanup(func() { _ = exec.Command("nft", "delete", "table", "inet", r.table).Run() })
	for _, c := range cmds {
		if out, err := exec.Command("nft", c...).CombinedOutput(); err != nil {
			Unavailable(t, "nft %s: %v: %s", strings.Join(c, " "), err, out)
		}
	}
	return r
}

var counterRe = regexp.MustCompile(`counter packets (\d+) bytes`)

// Dropped returns the rule counter: the exact number of requests dropped.
func (r *Rule) Dropped(t testing.TB) int {
	t.Helper()
	out, err := exec.Command("nft", "list", "table", "inet", r.table).CombinedOutput()
	if err != nil {
		t.Fatalf("nft list: %v: %s", err, out)
	}
	m := counterRe.FindSubmatch(out)
	if m == nil {
		t.Fatalf("no counter in %s", out)
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}
