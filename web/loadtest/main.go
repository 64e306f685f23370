// Command loadtest seeds a ClickHouse database with probe results for many
// regions and targets over a long period, then measures the latency of the
// dashboard's data endpoints through a real web server (HTTP on loopback,
// token authentication, JSON encoding included) and prints the figures.
//
//	go run ./web/loadtest                       # managed clickhouse-server in a temp dir
//	go run ./web/loadtest -clickhouse 127.0.0.1:9000 -keep
//
// Probe rounds are generated inside ClickHouse (INSERT … SELECT FROM
// numbers()) into probe_results, so the materialized views fill the
// rollups exactly as live ingestion does.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/meridian-obs/meridian/pipeline/chlocal"
	"github.com/meridian-obs/meridian/pipeline/store"
	"github.com/meridian-obs/meridian/web"
)

func main() {
	var (
		addr     = flag.String("clickhouse", "", "ClickHouse native address; empty starts a managed clickhouse-server in a temporary directory")
		db       = flag.String("db", "meridian_loadtest", "database (created; dropped at the end unless -keep)")
		days     = flag.Int("days", 30, "days of probe data")
		regions  = flag.Int("regions", 20, "source regions (one agent each); targets are spread over the same regions")
		targets  = flag.Int("targets", 50, "targets, each probed from every region")
		interval = flag.Duration("interval", 5*time.Minute, "probe round interval of the seeded data")
		requests = flag.Int("requests", 50, "requests per endpoint case")
		conc     = flag.Int("concurrency", 4, "concurrent requests")
		keep     = flag.Bool("keep", false, "keep the database (and reuse its data on the next run)")
	)
	flag.Parse()
	if err := run(*addr, *db, *days, *regions, *targets, *interval, *requests, *conc, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

func run(addr, db string, days, regions, targets int, interval time.Duration, requests, conc int, keep bool) error {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if addr == "" {
		dir, err := os.MkdirTemp("", "meridian-loadtest-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		cfg := chlocal.DefaultConfig()
		cfg.Dir, cfg.TCPPort, cfg.HTTPPort = dir, 0, 0
		srv := chlocal.New(cfg, log)
		sctx, cancel := context.WithTimeout(ctx, 90*time.Second)
		defer cancel()
		if err := srv.Start(sctx); err != nil {
			return err
		}
		defer srv.Stop(context.Background())
		addr = srv.Addr
	}
	cfg := store.DefaultConfig()
	cfg.Addr, cfg.Database, cfg.QueryTimeout = []string{addr}, db, 30*time.Minute
	conn, err := store.Open(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	if !keep {
		defer func() {
			_ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db)
		}()
	}
	if _, err := store.Migrate(ctx, conn, log); err != nil {
		return err
	}
	v, _ := store.ServerVersion(ctx, conn)
	fmt.Printf("ClickHouse %d.%d at %s, database %s\n", v.Major, v.Minor, addr, db)

	now := time.Now().UTC().Truncate(time.Hour)
	if err := seed(ctx, conn, now, days, regions, targets, interval); err != nil {
		return err
	}
	// The rollups are filled by their views as the data is seeded (and,
	// for a -keep database made before a rollup changed, rebuilt by its
	// migration: store.Migrate above).
	for _, tbl := range append([]store.ProbeRollup{{Table: "probe_results"}}, store.ProbeRollups...) {
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM "+tbl.Table).Scan(&n); err != nil {
			return err
		}
		fmt.Printf("  %-22s %12d rows\n", tbl.Table, n)
	}
	// Measure a server that has been running: the rollups of past days
	// merged (the 5-minute one serves the last hours only and is left as
	// it is), and no merge of the freshly seeded parts still running.
	for _, rb := range store.ProbeRollups {
		if rb.Table != "probe_rollup_5m" {
			_ = conn.Exec(ctx, "OPTIMIZE TABLE "+rb.Table+" FINAL")
		}
	}
	settle := time.Now()
	for time.Since(settle) < 3*time.Minute {
		var merges uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM system.merges").Scan(&merges); err != nil || merges == 0 {
			break
		}
		time.Sleep(time.Second)
	}
	fmt.Printf("background merges settled in %s\n", time.Since(settle).Round(time.Second))

	stateDir, err := os.MkdirTemp("", "meridian-loadtest-web-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(stateDir)
	wcfg := web.DefaultConfig()
	wcfg.Listen = "127.0.0.1:0"
	// The server's own pool logs its queries (system.query_log), so that
	// the figures include what ClickHouse read, which does not depend on
	// how busy the machine is.
	wconn, err := clickhouse.Open(&clickhouse.Options{Addr: cfg.Addr, Protocol: clickhouse.Native,
		Auth: clickhouse.Auth{Database: db, Username: cfg.Username}, MaxOpenConns: 8, MaxIdleConns: 8,
		Settings: clickhouse.Settings{"log_queries": 1}})
	if err != nil {
		return err
	}
	defer wconn.Close()
	s, err := web.New(wcfg, web.Deps{Log: log, Conn: func() driver.Conn { return wconn }, StateDir: stateDir, Stdout: io.Discard})
	if err != nil {
		return err
	}
	if err := s.Start(ctx); err != nil {
		return err
	}
	defer s.Stop(context.Background())
	tok, err := s.Users().CreateToken("loadtest", web.RoleViewer)
	if err != nil {
		return err
	}

	// Ranges end at the newest seeded round (the data may be older than
	// now when reused).
	var end time.Time
	if err := conn.QueryRow(ctx, "SELECT max(time) FROM probe_results").Scan(&end); err != nil {
		return err
	}
	cases := endpointCases(regions, targets, end.Add(time.Minute))
	fmt.Printf("\n%d requests per case, concurrency %d, server %s\n\n", requests, conc, s.URL())
	fmt.Printf("HTTP latency (client side) and, per request, what ClickHouse read (system.query_log)\n")
	fmt.Printf("%-58s %7s %7s %7s %7s %4s %11s %9s %7s\n", "endpoint", "p50 ms", "p95 ms", "p99 ms", "max ms", "err", "rows read", "MB read", "CH p95")
	var all []time.Duration
	for _, c := range cases {
		mark := time.Now().Add(-time.Second)
		lat, errs := measure(s.URL(), tok, c, requests, conc)
		all = append(all, lat...)
		rows, mb, chp95 := readStats(ctx, conn, mark)
		fmt.Printf("%-58s %7.1f %7.1f %7.1f %7.1f %4d %11.0f %9.2f %7.1f\n", c.name, ms(pct(lat, 50)), ms(pct(lat, 95)), ms(pct(lat, 99)), ms(pct(lat, 100)), errs, rows, mb, chp95)
	}
	fmt.Printf("%-58s %7.1f %7.1f %7.1f %7.1f\n", "ALL", ms(pct(all, 50)), ms(pct(all, 95)), ms(pct(all, 99)), ms(pct(all, 100)))
	if l, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Printf("\nload average during the run: %s", l)
	}
	return nil
}

func seed(ctx context.Context, conn driver.Conn, now time.Time, days, regions, targets int, interval time.Duration) error {
	var have uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM probe_results").Scan(&have); err != nil {
		return err
	}
	perDay := uint64(24*time.Hour/interval) * uint64(regions*targets)
	if have >= perDay*uint64(days) {
		fmt.Printf("reusing %d seeded probe rounds\n", have)
		return nil
	}
	if have > 0 {
		if err := conn.Exec(ctx, "TRUNCATE TABLE probe_results"); err != nil {
			return err
		}
		for _, rb := range store.ProbeRollups {
			_ = conn.Exec(ctx, "TRUNCATE TABLE "+rb.Table)
		}
	}
	series := regions * targets
	step := int64(interval / time.Second)
	start := time.Now()
	fmt.Printf("seeding %d days × %d regions × %d targets every %s (%d rounds) …\n", days, regions, targets, interval, perDay*uint64(days))
	for d := days - 1; d >= 0; d-- {
		dayStart := now.Add(-time.Duration(d+1) * 24 * time.Hour).Unix()
		// number → (round, series); series → (source region, target); each
		// target lives in region target % regions. RTT: a base per region
		// pair plus noise; 1 round in 97 loses 2 of 10 packets.
		q := fmt.Sprintf(`INSERT INTO probe_results (time, agent, src_region, src_site, check_name, probe_type, target, target_addr,
	target_region, target_site, sent, received, loss_ratio, rtt_min_ms, rtt_avg_ms, rtt_max_ms, rtt_p50_ms, rtt_p95_ms, jitter_ms, ingest_batch)
SELECT toDateTime(%d + intDiv(number, %d) * %d) AS time,
	concat('agent-', toString(number %% %d)) AS agent,
	concat('region-', toString(number %% %d)) AS src_region,
	concat('site-', toString(number %% %d), 'a') AS src_site,
	'ping' AS check_name, 'icmp' AS probe_type,
	concat('t', toString(intDiv(number %% %d, %d)), '.example') AS target,
	toFixedString('', 16) AS target_addr,
	concat('region-', toString(intDiv(number %% %d, %d) %% %d)) AS target_region,
	concat('site-', toString(intDiv(number %% %d, %d) %% %d), 'a') AS target_site,
	toUInt32(10) AS sent,
	toUInt32(if(number %% 97 = 0, 8, 10)) AS received,
	(10 - received) / 10 AS loss_ratio,
	5 + ((number %% %d) + intDiv(number %% %d, %d) %% %d) * 4 + (cityHash64(number) %% 1000) / 100 AS rtt_p50_ms,
	rtt_p50_ms * 0.9 AS rtt_min_ms, rtt_p50_ms AS rtt_avg_ms, rtt_p50_ms * 1.5 AS rtt_max_ms,
	rtt_p50_ms * 1.2 AS rtt_p95_ms, (cityHash64(number, 1) %% 300) / 100 AS jitter_ms,
	toUInt64(%d) AS ingest_batch
FROM numbers(%d)`, dayStart, series, step,
			regions, regions, regions,
			series, regions, series, regions, regions, series, regions, regions,
			regions, series, regions, regions,
			d+1, perDay)
		if err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("seed day %d: %w", d, err)
		}
		if d%5 == 0 {
			fmt.Printf("  %d days left, %s\n", d, time.Since(start).Round(time.Second))
		}
	}
	fmt.Printf("seeded in %s\n", time.Since(start).Round(time.Second))
	return nil
}

type endpointCase struct {
	name string
	path string
	// vary gives the query of request i.
	vary func(i int) url.Values
}

func endpointCases(regions, targets int, end time.Time) []endpointCase {
	span := func(rng string) url.Values {
		d := map[string]time.Duration{"1h": time.Hour, "24h": 24 * time.Hour, "7d": 7 * 24 * time.Hour, "30d": 30 * 24 * time.Hour}[rng]
		return url.Values{"from": {fmt.Sprint(end.Add(-d).Unix())}, "to": {fmt.Sprint(end.Unix())}}
	}
	with := func(v url.Values, kv ...string) url.Values {
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	region := func(i int) string { return fmt.Sprintf("region-%d", i%regions) }
	target := func(i int) string { return fmt.Sprintf("t%d.example", i%targets) }
	var cs []endpointCase
	for _, rng := range []string{"1h", "24h", "7d", "30d"} {
		rng := rng
		cs = append(cs,
			endpointCase{"probes/series range=" + rng + " target+src_region", "/api/v1/probes/series", func(i int) url.Values {
				return with(span(rng), "target", target(i), "src_region", region(i*7))
			}},
			endpointCase{"probes/series range=" + rng + " region (src or target)", "/api/v1/probes/series", func(i int) url.Values {
				return with(span(rng), "region", region(i))
			}},
			endpointCase{"probes/summary range=" + rng + " (all paths)", "/api/v1/probes/summary", func(i int) url.Values {
				return with(span(rng), "limit", "5000")
			}},
			endpointCase{"probes/matrix range=" + rng, "/api/v1/probes/matrix", func(i int) url.Values {
				return span(rng)
			}},
		)
	}
	cs = append(cs,
		endpointCase{"probes/series range=30d all paths", "/api/v1/probes/series", func(i int) url.Values { return span("30d") }},
		endpointCase{"filters range=30d", "/api/v1/filters", func(i int) url.Values { return span("30d") }},
	)
	return cs
}

func measure(base, tok string, c endpointCase, n, conc int) ([]time.Duration, int) {
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: conc}}
	var (
		mu   sync.Mutex
		lat  []time.Duration
		errs int
		wg   sync.WaitGroup
	)
	work := make(chan int)
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				req, _ := http.NewRequest("GET", base+c.path+"?"+c.vary(i).Encode(), nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				t0 := time.Now()
				resp, err := client.Do(req)
				ok := err == nil && resp.StatusCode == 200
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				d := time.Since(t0)
				mu.Lock()
				if ok {
					lat = append(lat, d)
				} else {
					errs++
				}
				mu.Unlock()
			}
		}()
	}
	order := rand.Perm(n)
	for _, i := range order {
		work <- i
	}
	close(work)
	wg.Wait()
	return lat, errs
}

// readStats returns the mean rows and megabytes read per data query since
// mark, and the p95 of their server-side durations (ms). Use a ClickHouse
// server that nothing else queries meanwhile.
func readStats(ctx context.Context, conn driver.Conn, mark time.Time) (rows, mb, p95 float64) {
	_ = conn.Exec(ctx, "SYSTEM FLUSH LOGS")
	var r, b, d float64
	err := conn.QueryRow(ctx, `SELECT avg(read_rows), avg(read_bytes) / 1e6, quantile(0.95)(query_duration_ms)
		FROM system.query_log WHERE type = 2 AND event_time >= toDateTime(?)
		AND query LIKE 'SELECT%' AND query NOT LIKE '%system.%'`, mark.Unix()).Scan(&r, &b, &d)
	if err != nil {
		return -1, -1, -1
	}
	return r, b, d
}

func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(float64(len(s))*p/100+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

var _ = strings.TrimSpace
