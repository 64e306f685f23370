// Command meridian is the Meridian server and its admin CLI.
package main

import (
	"context"
	"os"

	"github.com/meridian-obs/meridian/cmd/meridian/cli"
)

func main() {
	os.Exit(cli.Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}
