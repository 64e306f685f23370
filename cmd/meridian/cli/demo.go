package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/meridian-obs/meridian/internal/app"
)

func init() {
	Register(Command{Name: "demo", Summary: "run Meridian on its embedded default and print how to reach it", Run: demo})
}

// DemoHook, when set (by the game-day package), extends the demo with a
// simulated network once the server runs; it returns a stop function.
var DemoHook func(ctx context.Context, a *app.App, stdout io.Writer) (stop func(), err error)

// DemoPrepare, when set (by the game-day package), runs before the server
// starts: it starts the simulated network's peers and returns the
// configuration file to serve with (the given one plus the simulation's
// sections) and a function that stops what it started.
var DemoPrepare func(ctx context.Context, cfgPath string, stdout io.Writer) (path string, stop func(), err error)

func demo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := NewFlagSet("demo", stderr)
	cfgPath := fs.String("config", "", "configuration file (default: the embedded default)")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return ExitOK
		}
		return ExitConfig
	}
	var stopSim func()
	if DemoPrepare != nil {
		p, stop, err := DemoPrepare(ctx, *cfgPath, stdout)
		if err != nil {
			fmt.Fprintf(stderr, "meridian demo: simulated network not started: %v\n", err)
		} else {
			*cfgPath = p
			defer stop()
		}
	}
	err := app.Run(ctx, app.Options{ConfigPath: *cfgPath, Stdout: stdout, Stderr: stderr, Started: func(a *app.App) {
		if DemoHook != nil {
			var err error
			if stopSim, err = DemoHook(ctx, a, stdout); err != nil {
				fmt.Fprintf(stderr, "meridian demo: simulated network: %v\n", err)
			}
		}
		printBanner(stdout, a)
	}, Stopping: func() {
		// The simulated agents and senders stop before the server, so that
		// they do not retry against it while it stops.
		if stopSim != nil {
			stopSim()
			stopSim = nil
		}
	}})
	if stopSim != nil {
		stopSim()
	}
	if err != nil {
		return Fail(stderr, err)
	}
	return ExitOK
}

func printBanner(w io.Writer, a *app.App) {
	var b strings.Builder
	fmt.Fprintf(&b, "\n  Meridian is running.\n\n")
	fmt.Fprintf(&b, "  Dashboard and API: %s/\n", a.Web.URL())
	fmt.Fprintf(&b, "  Health:            %s/readyz   Metrics: %s/metrics\n", a.Web.URL(), a.Web.URL())
	fmt.Fprintf(&b, "  ClickHouse:        %s (database %s)\n", strings.Join(a.Store.Config().Addr, ","), a.Cfg.ClickHouse.Database)
	cred := filepath.Join(a.Cfg.StateDir, "web", "initial-admin.txt")
	if data, err := os.ReadFile(cred); err == nil {
		fmt.Fprintf(&b, "  Admin credentials (from %s):\n", cred)
		for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			if !strings.HasPrefix(l, "#") {
				fmt.Fprintf(&b, "    %s\n", l)
			}
		}
	} else {
		fmt.Fprintf(&b, "  Admin credentials: printed at the first start of this state directory (%s)\n", a.Cfg.StateDir)
	}
	fmt.Fprintf(&b, "\n  Press Ctrl-C to stop.\n\n")
	fmt.Fprint(w, b.String())
}
