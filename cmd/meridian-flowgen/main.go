// Command meridian-flowgen sends synthetic NetFlow v9, IPFIX or sFlow v5
// datagrams at a chosen rate to a collector (loopback only unless
// -allow-non-loopback), and prints what it sent so that the receiver can
// be checked.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/meridian-obs/meridian/collectors/flow/flowgen"
)

func main() {
	var cfg flowgen.SendConfig
	flag.StringVar(&cfg.Kind, "kind", flowgen.IPFIX, "netflow9, ipfix or sflow5")
	flag.StringVar(&cfg.Addr, "addr", "127.0.0.1:2055", "collector IP:port")
	flag.IntVar(&cfg.Rate, "rate", 10000, "flows per second (0: as fast as possible)")
	flag.Uint64Var(&cfg.Flows, "flows", 0, "stop after this many flows (0: run for -duration)")
	flag.DurationVar(&cfg.Duration, "duration", 10*time.Second, "how long to send when -flows is 0")
	flag.IntVar(&cfg.FlowsPerPacket, "per-packet", 0, "flows per datagram (0: as many as fit 1400 bytes)")
	sampling := flag.Uint("sampling", 0, "announce this sampling rate (options template / sFlow header)")
	flag.BoolVar(&cfg.AllowNonLoopback, "allow-non-loopback", false, "allow a destination outside 127.0.0.0/8 and ::1")
	flag.Parse()
	cfg.SamplingRate = uint32(*sampling)
	if cfg.Flows > 0 {
		cfg.Duration = 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	start := time.Now()
	tot, datagrams, err := flowgen.Send(ctx, cfg)
	el := time.Since(start)
	fmt.Printf("kind=%s addr=%s flows=%d bytes=%d packets=%d datagrams=%d seconds=%.3f flows_per_s=%.0f\n",
		cfg.Kind, cfg.Addr, tot.Flows, tot.Bytes, tot.Packets, datagrams, el.Seconds(), float64(tot.Flows)/el.Seconds())
	if err != nil {
		fmt.Fprintln(os.Stderr, "meridian-flowgen:", err)
		os.Exit(1)
	}
}
