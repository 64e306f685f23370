package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/meridian-obs/meridian/internal/app"
	"github.com/meridian-obs/meridian/runbooks"
)

func init() {
	Register(Command{Name: "runbook", Summary: "runbook files: runbook check [--config CFG] FILE…, runbook plan NAME --labels k=v,… [--config CFG] [FILE…]", Run: runbookCmd})
}

const runbookUsage = `usage: meridian runbook check [--config CFG] [FILE…]
       meridian runbook plan NAME --labels k=v,… [--config CFG] [--groups a,b,c] [--burning a,…] [--json] [FILE…]`

func runbookCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, runbookUsage)
		return ExitConfig
	}
	switch args[0] {
	case "check":
		fs := NewFlagSet("runbook check", stderr)
		cfgPath := fs.String("config", "", "check references against this server configuration (runbooks.dns, .bgp, .webhook) and take runbooks.files from it")
		if err := fs.Parse(args[1:]); err != nil {
			return ExitConfig
		}
		rcfg, env, files, code := runbookEnv(*cfgPath, fs.Args(), stderr)
		if code != ExitOK {
			return code
		}
		if len(files) == 0 {
			fmt.Fprintln(stderr, runbookUsage)
			return ExitConfig
		}
		_ = rcfg
		rbs, err := runbooks.LoadFiles(env, files...)
		if err != nil {
			fmt.Fprintf(stderr, "meridian runbook check: %s\n", indent(err.Error()))
			return ExitConfig
		}
		note := ""
		if env == nil {
			note = " (structure only: give --config to check the DNS servers, BGP speaker and webhook endpoints they use)"
		}
		fmt.Fprintf(stdout, "%d runbook(s) in %d file(s) are valid%s\n", len(rbs), len(files), note)
		return ExitOK
	case "plan":
		rest := args[1:]
		name := ""
		if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
			name, rest = rest[0], rest[1:]
		}
		fs := NewFlagSet("runbook plan", stderr)
		cfgPath := fs.String("config", "", "server configuration (runbooks section)")
		labelsFlag := fs.String("labels", "", "the alert's labels: k=v,k2=v2")
		groups := fs.String("groups", "", "the SLO's groups, for healthyPeer and traffic checks: a,b,c")
		burning := fs.String("burning", "", "groups to consider burning: a,b")
		asJSON := fs.Bool("json", false, "print the plan as JSON")
		if err := fs.Parse(rest); err != nil {
			return ExitConfig
		}
		if name == "" || *labelsFlag == "" {
			fmt.Fprintln(stderr, runbookUsage)
			return ExitConfig
		}
		labels, err := runbooks.ParseLabels(*labelsFlag)
		if err != nil {
			fmt.Fprintf(stderr, "meridian runbook plan: --labels: %v\n", err)
			return ExitConfig
		}
		rcfg, _, files, code := runbookEnv(*cfgPath, fs.Args(), stderr)
		if code != ExitOK {
			return code
		}
		st := &runbooks.StaticStatus{All: map[string][]string{}, Burning: map[string]bool{}}
		slo := labels["slo"]
		st.All[slo] = append(st.All[slo], splitList(*groups)...)
		for _, g := range splitList(*burning) {
			st.Burning[slo+"/"+g] = true
		}
		p, err := runbooks.PlanFor(rcfg, files, name, labels, st)
		if err != nil {
			fmt.Fprintf(stderr, "meridian runbook plan: %s\n", indent(err.Error()))
			return ExitFail
		}
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			_ = enc.Encode(p)
		} else {
			fmt.Fprint(stdout, runbooks.FormatPlan(p))
			fmt.Fprintln(stdout, "(a plan: nothing was contacted or changed)")
		}
		return ExitOK
	}
	fmt.Fprintln(stderr, runbookUsage)
	return ExitConfig
}

// runbookEnv loads the runbooks section of a server configuration.
func runbookEnv(cfgPath string, files []string, stderr io.Writer) (runbooks.Config, *runbooks.Config, []string, int) {
	if cfgPath == "" {
		return runbooks.DefaultConfig(), nil, files, ExitOK
	}
	cfg, err := app.LoadConfig(cfgPath)
	if err != nil {
		return runbooks.Config{}, nil, nil, Fail(stderr, &app.ConfigError{Err: err})
	}
	rc := cfg.Runbooks
	if len(files) == 0 {
		files = rc.Files
	}
	return rc, &rc, files, ExitOK
}

func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}
