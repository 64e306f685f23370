// Package cli holds the meridian subcommands, so that tests run them
// in-process.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/meridian-obs/meridian/internal/app"
)

// Exit codes.
const (
	ExitOK     = 0
	ExitFail   = 1
	ExitConfig = 2
)

// Command is one subcommand.
type Command struct {
	Name    string
	Summary string
	Run     func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

var commands = map[string]Command{}

// Register adds a subcommand; subcommand files call it from init.
func Register(c Command) { commands[c.Name] = c }

func init() {
	Register(Command{Name: "serve", Summary: "run the server (--config FILE, --check, --dump)", Run: serve})
	Register(Command{Name: "check", Summary: "validate a configuration file and exit: check CONFIG", Run: check})
	Register(Command{Name: "version", Summary: "print the version", Run: func(_ context.Context, _ []string, out, _ io.Writer) int {
		fmt.Fprintln(out, "meridian", Version)
		return ExitOK
	}})
}

// Version is set at build time (-ldflags "-X …cli.Version=…").
var Version = "dev"

// Main dispatches to a subcommand and returns the exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return ExitConfig
		}
		return ExitOK
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "meridian: unknown command %q\n\n", args[0])
		usage(stderr)
		return ExitConfig
	}
	return c.Run(ctx, args[1:], stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: meridian COMMAND [options]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-14s %s\n", n, commands[n].Summary)
	}
}

// NewFlagSet returns a flag set that reports errors to stderr and does not
// exit.
func NewFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("meridian "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// Fail prints an error and returns the exit code that fits it.
func Fail(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "meridian: %s\n", indent(err.Error()))
	var ce *app.ConfigError
	if errors.As(err, &ce) {
		return ExitConfig
	}
	return ExitFail
}

func indent(s string) string { return strings.ReplaceAll(s, "\n", "\n  ") }

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := NewFlagSet("serve", stderr)
	cfgPath := fs.String("config", "", "configuration file (default: the embedded default)")
	checkOnly := fs.Bool("check", false, "validate the configuration and exit")
	dump := fs.Bool("dump", false, "print the effective configuration, secrets redacted, and exit")
	if err := fs.Parse(args); err != nil {
		return ExitConfig
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "meridian serve: unexpected argument %q\n", fs.Arg(0))
		return ExitConfig
	}
	err := app.Run(ctx, app.Options{ConfigPath: *cfgPath, Check: *checkOnly, Dump: *dump, Stdout: stdout, Stderr: stderr})
	if err != nil {
		return Fail(stderr, err)
	}
	return ExitOK
}

func check(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := NewFlagSet("check", stderr)
	dump := fs.Bool("dump", false, "also print the effective configuration, secrets redacted")
	if err := fs.Parse(args); err != nil {
		return ExitConfig
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: meridian check [--dump] CONFIG")
		return ExitConfig
	}
	err := app.Run(ctx, app.Options{ConfigPath: fs.Arg(0), Check: !*dump, Dump: *dump, Stdout: stdout, Stderr: stderr})
	if err != nil {
		return Fail(stderr, err)
	}
	return ExitOK
}
