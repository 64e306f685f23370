// Command meridian-agent is Meridian's probe agent: one-shot probes for
// debugging a path, a UDP echo responder, and the daemon that runs the
// server's assignments. It must never link the ClickHouse driver.
package main

import (
	"context"
	"os"

	"github.com/meridian-obs/meridian/probes/agent"
)

func main() {
	os.Exit(agent.Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}
