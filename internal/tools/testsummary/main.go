// Command testsummary reads `go test -json` on stdin and prints what a
// person needs from a full test run: one line per package, the whole output
// of every failing test, and at the end a loud list of every skipped test
// with its reason, so that a test that needs a real peer (ClickHouse, BIND,
// gobgpd, …) is never skipped silently. It exits 1 when anything failed.
//
//	go test -json ./... | go run ./internal/tools/testsummary
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action      string
	Package     string
	Test        string
	Elapsed     float64
	Output      string
	ImportPath  string
	FailedBuild string
}

type key struct{ pkg, test string }

type skip struct {
	pkg, test, reason string
}

func main() {
	os.Exit(run(os.Stdin, os.Stdout))
}

func run(in io.Reader, out io.Writer) int {
	outputs := map[key]*strings.Builder{}
	buildOut := map[string]*strings.Builder{}
	var skips []skip
	failed := false
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			// Not test2json: the go command's own messages.
			fmt.Fprintln(out, string(line))
			if strings.HasPrefix(string(line), "FAIL") || strings.Contains(string(line), "[build failed]") {
				failed = true
			}
			continue
		}
		switch e.Action {
		case "build-output":
			b := buildOut[e.ImportPath]
			if b == nil {
				b = &strings.Builder{}
				buildOut[e.ImportPath] = b
			}
			b.WriteString(e.Output)
		case "build-fail":
			failed = true
			if b := buildOut[e.ImportPath]; b != nil {
				fmt.Fprint(out, b.String())
			}
		case "output":
			k := key{e.Package, e.Test}
			b := outputs[k]
			if b == nil {
				b = &strings.Builder{}
				outputs[k] = b
			}
			b.WriteString(e.Output)
		case "skip":
			if e.Test != "" {
				skips = append(skips, skip{e.Package, e.Test, reason(outputs[key{e.Package, e.Test}])})
			}
			delete(outputs, key{e.Package, e.Test})
		case "pass":
			delete(outputs, key{e.Package, e.Test})
			if e.Test == "" {
				fmt.Fprintf(out, "ok  \t%s\t%.1fs\n", e.Package, e.Elapsed)
			}
		case "fail":
			failed = true
			if e.Test != "" {
				if b := outputs[key{e.Package, e.Test}]; b != nil {
					fmt.Fprint(out, b.String())
				}
				delete(outputs, key{e.Package, e.Test})
				continue
			}
			// The package failed: print what was said outside any test
			// (a panic, a TestMain error, a timeout).
			if b := outputs[key{e.Package, ""}]; b != nil {
				fmt.Fprint(out, b.String())
			}
			fmt.Fprintf(out, "FAIL\t%s\t%.1fs\n", e.Package, e.Elapsed)
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintf(out, "testsummary: reading go test output: %v\n", err)
		failed = true
	}
	report(out, skips)
	if failed {
		return 1
	}
	return 0
}

// reason is the skip message: the last line the test logged before it
// skipped, without the file:line prefix.
func reason(b *strings.Builder) string {
	if b == nil {
		return "(no reason given)"
	}
	var last string
	for _, l := range strings.Split(b.String(), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "=== ") || strings.HasPrefix(l, "--- SKIP") {
			continue
		}
		last = l
	}
	if i := strings.Index(last, ".go:"); i >= 0 {
		if j := strings.Index(last[i:], ": "); j >= 0 {
			last = last[i+j+2:]
		}
	}
	if last == "" {
		return "(no reason given)"
	}
	return last
}

// peerSkip reports whether a skip reason says a real peer was missing
// (chtest.Unavailable and the launchers built on it).
func peerSkip(r string) bool {
	return strings.Contains(r, "set CI=true to make this a failure")
}

func report(out io.Writer, skips []skip) {
	if len(skips) == 0 {
		fmt.Fprintln(out, "no test was skipped")
		return
	}
	sort.Slice(skips, func(i, j int) bool {
		if skips[i].pkg != skips[j].pkg {
			return skips[i].pkg < skips[j].pkg
		}
		return skips[i].test < skips[j].test
	})
	var peers, other []skip
	for _, s := range skips {
		if peerSkip(s.reason) {
			peers = append(peers, s)
		} else {
			other = append(other, s)
		}
	}
	if len(peers) > 0 {
		bar := strings.Repeat("!", 72)
		fmt.Fprintf(out, "\n%s\n%d TEST(S) SKIPPED BECAUSE A REAL PEER IS MISSING — this run did NOT test them:\n", bar, len(peers))
		for _, s := range peers {
			fmt.Fprintf(out, "  %s %s: %s\n", s.pkg, s.test, s.reason)
		}
		fmt.Fprintf(out, "Install the peers with `sudo make deps` (Debian packages of .ci/packages.txt), then rerun `make test`.\n%s\n", bar)
	}
	if len(other) > 0 {
		fmt.Fprintf(out, "\n%d other skipped test(s):\n", len(other))
		for _, s := range other {
			fmt.Fprintf(out, "  %s %s: %s\n", s.pkg, s.test, s.reason)
		}
	}
}
