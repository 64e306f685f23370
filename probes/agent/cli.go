package agent

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/meridian-obs/meridian/probes"
	"github.com/meridian-obs/meridian/probes/icmpengine"
)

const usage = `meridian-agent: Meridian's probe agent

usage:
  meridian-agent probe --type TYPE [--count N] [--interval D] [--timeout D] [--param K=V]... [--engine] [--json] TARGET
  meridian-agent responder --listen ADDR
  meridian-agent run --config FILE [--check]
  meridian-agent version

types: icmp (TARGET host), tcp and udp (HOST:PORT), http (URL), dns (NAME, --param server=HOST:PORT)
`

// Main runs the command line; it returns the exit status (0 ok, 1 probe
// failed or runtime error, 2 usage or configuration error).
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "probe":
		return cmdProbe(ctx, args[1:], stdout, stderr)
	case "responder":
		return cmdResponder(ctx, args[1:], stdout, stderr)
	case "run":
		return cmdRun(ctx, args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "meridian-agent", Version)
		return 0
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "unknown command %q\n\n%s", args[0], usage)
	return 2
}

type params map[string]string

func (p params) String() string { return "" }
func (p params) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return errors.New("expected KEY=VALUE")
	}
	p[k] = val
	return nil
}

// parseInterspersed parses flags before and after positional arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func cmdProbe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	typ := fs.String("type", "icmp", "probe type: icmp, tcp, udp, http, dns")
	count := fs.Int("count", 0, "packets or attempts (default 10 for icmp/udp, 1 otherwise)")
	interval := fs.Duration("interval", 0, "spacing between packets (default 100ms)")
	timeout := fs.Duration("timeout", 0, "wait for the last answer (default 2s)")
	asJSON := fs.Bool("json", false, "print one JSON object")
	engine := fs.Bool("engine", false, "icmp: use the shared-socket engine instead of pro-bing")
	ps := params{}
	fs.Var(ps, "param", "probe parameter KEY=VALUE (repeatable), e.g. server=127.0.0.1:53, expect_status=200")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "probe: expected exactly one TARGET")
		return 2
	}
	if *count < 0 || *count > 100000 {
		fmt.Fprintln(stderr, "probe: --count must be between 1 and 100000")
		return 2
	}
	m := probes.NewMetrics(nil)
	var p probes.Prober
	if *engine && *typ == probes.TypeICMP {
		e, err := icmpengine.Open(m)
		if err != nil {
			fmt.Fprintf(stderr, "probe: %v\n", err)
			return 1
		}
		defer e.Close()
		p = e
	} else if p, err = probes.New(*typ, m); err != nil {
		fmt.Fprintf(stderr, "probe: %v\n", err)
		return 2
	}
	c := probes.Check{Name: "cli", Type: *typ, Target: pos[0], Count: *count, Spacing: *interval, Timeout: *timeout, Params: ps}.WithDefaults()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	r := p.Probe(ctx, c)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		if err := enc.Encode(r); err != nil {
			return 1
		}
	} else {
		printSummary(stdout, r)
	}
	if r.Received == 0 {
		return 1
	}
	return 0
}

func printSummary(w io.Writer, r probes.Result) {
	addr := ""
	if r.TargetAddr != "" && r.TargetAddr != r.Target {
		addr = " (" + r.TargetAddr + ")"
	}
	fmt.Fprintf(w, "--- %s %s%s statistics ---\n", r.Type, r.Target, addr)
	fmt.Fprintf(w, "%d sent, %d received, %d duplicates, %d reordered, %.1f%% loss\n",
		r.Sent, r.Received, r.Duplicates, r.Reordered, r.LossRatio*100)
	if r.Received > 0 {
		fmt.Fprintf(w, "rtt min/avg/max/stddev = %.3f/%.3f/%.3f/%.3f ms\n", r.RTTMinMs, r.RTTAvgMs, r.RTTMaxMs, r.RTTStddevMs)
		fmt.Fprintf(w, "rtt p50/p95/p99 = %.3f/%.3f/%.3f ms, jitter %.3f ms (rfc3550 %.3f ms), MOS %.2f\n",
			r.RTTP50Ms, r.RTTP95Ms, r.RTTP99Ms, r.JitterMs, r.JitterRFC3550Ms, r.MOS)
	}
	if r.Status != 0 {
		fmt.Fprintf(w, "status %d\n", r.Status)
	}
	if len(r.Phases) > 0 {
		parts := make([]string, len(r.Phases))
		for i, p := range r.Phases {
			parts[i] = fmt.Sprintf("%s=%.3f", p.Name, p.Value)
		}
		fmt.Fprintf(w, "phases: %s\n", strings.Join(parts, " "))
	}
	if r.Error != "" {
		fmt.Fprintf(w, "error: %s\n", r.Error)
	}
}

func cmdResponder(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("responder", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", ":7", "UDP address to echo on")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	r, err := probes.ListenResponder(*listen)
	if err != nil {
		fmt.Fprintf(stderr, "responder: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "UDP echo responder on %s\n", r.Addr())
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := r.Serve(ctx); err != nil {
		fmt.Fprintf(stderr, "responder: %v\n", err)
		return 1
	}
	return 0
}

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "agent configuration file")
	check := fs.Bool("check", false, "validate the configuration and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path == "" {
		fmt.Fprintln(stderr, "run: --config FILE is required")
		return 2
	}
	cfg, err := LoadConfig(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	if *check {
		fmt.Fprintf(stdout, "configuration %s is valid\n", *path)
		return 0
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	a, err := New(cfg, Deps{Log: log})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := a.Start(ctx); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	log.Info("meridian-agent running", "name", cfg.Name, "server", cfg.Server, "metrics", a.MetricsAddr())
	<-ctx.Done()
	log.Info("stopping: spooling and delivering what was measured")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.Stop(sctx); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}
