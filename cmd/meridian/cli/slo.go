package cli

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/meridian-obs/meridian/internal/app"
	"github.com/meridian-obs/meridian/slo"
)

func init() {
	Register(Command{Name: "slo", Summary: "SLO files: slo check FILE…, slo export-rules [--config CFG] [-o OUT] [FILE…]", Run: sloCmd})
}

func sloCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: meridian slo check FILE…\n       meridian slo export-rules [--config CFG] [-o OUT] [FILE…]")
		return ExitConfig
	}
	switch args[0] {
	case "check":
		files := args[1:]
		if len(files) == 0 {
			fmt.Fprintln(stderr, "usage: meridian slo check FILE…")
			return ExitConfig
		}
		specs, err := slo.LoadFiles(files)
		if err != nil {
			fmt.Fprintf(stderr, "meridian slo check: %s\n", indent(err.Error()))
			return ExitConfig
		}
		fmt.Fprintf(stdout, "%d SLO(s) in %d file(s) are valid\n", len(specs), len(files))
		return ExitOK
	case "export-rules":
		fs := NewFlagSet("slo export-rules", stderr)
		cfgPath := fs.String("config", "", "take the SLO files from this server configuration (slo.files)")
		out := fs.String("o", "", "write the rules to this file (default: standard output)")
		if err := fs.Parse(args[1:]); err != nil {
			return ExitConfig
		}
		files := fs.Args()
		if *cfgPath != "" {
			cfg, err := app.LoadConfig(*cfgPath)
			if err != nil {
				return Fail(stderr, &app.ConfigError{Err: err})
			}
			files = append(files, cfg.SLO.Files...)
		}
		if len(files) == 0 {
			fmt.Fprintln(stderr, "meridian slo export-rules: no SLO file (give FILE… or --config)")
			return ExitConfig
		}
		specs, err := slo.LoadFiles(files)
		if err != nil {
			fmt.Fprintf(stderr, "meridian slo export-rules: %s\n", indent(err.Error()))
			return ExitConfig
		}
		rules, err := slo.ExportRules(specs)
		if err != nil {
			return Fail(stderr, err)
		}
		if *out == "" {
			_, _ = stdout.Write(rules)
			return ExitOK
		}
		if err := os.WriteFile(*out, rules, 0o644); err != nil {
			return Fail(stderr, err)
		}
		fmt.Fprintf(stdout, "wrote rules of %d SLO(s) to %s\n", len(specs), *out)
		return ExitOK
	}
	fmt.Fprintf(stderr, "meridian slo: unknown subcommand %q (check, export-rules)\n", args[0])
	return ExitConfig
}
