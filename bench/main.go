// Command bench measures Ferry's example server over real HTTP on
// loopback and compares every workload with raw PostgreSQL through pgx
// doing the same work in the same run.
//
//	go run ./bench                 # full run on PostgreSQL (a few minutes)
//	go run ./bench -smoke          # tiny sizes, one repetition, < 1 minute
//	go run ./bench -store sqlite   # the server on an embedded SQLite file
//	go run ./bench -only batch -cpuprofile cpu.out   # server profile in cpu-batch.out
//
// The server runs as a child process (this program re-executed with
// -serve), built exactly like example-app/server, so the RSS reported is
// the server's alone and the CPU profile is the server's alone. On
// PostgreSQL it lives in a fresh schema (search_path in the URL) that the
// program creates and drops; the baseline's table lives in the same
// schema. One JSON line per workload is printed as it finishes, the table
// at the end. See docs/PERFORMANCE.md.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/ferrysync/ferry/models"
	"github.com/jackc/pgx/v5"
)

const defaultDatabaseURL = "postgres://root@127.0.0.1:5432/test?sslmode=disable"

type options struct {
	store       string
	databaseURL string
	duration    time.Duration
	reps        int
	bigReps     int
	smoke       bool
	only        string
	batch       int
	changes     int
	pullLimit   int
	pullRecords int
	incSmall    int
	incLarge    int
	streams     int
	hints       int
	blobMB      int
	blobChunkMB int
	cpuProfile  string
	memProfile  string
	serverURL   string
	// quota gives the server the example app's default quota, so it keeps
	// exact usage counters (Config.UsageAccounting's auto).
	quota bool
	// driverProfile profiles this process: the driver and the baseline.
	driverProfile string
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-serve" {
		if err := serveMain(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "bench server:", err)
			os.Exit(1)
		}
		return
	}
	var o options
	dbURL := os.Getenv("FERRY_BENCH_DATABASE_URL")
	if dbURL == "" {
		dbURL = defaultDatabaseURL
	}
	flag.StringVar(&o.store, "store", "postgres", "the server's store: postgres or sqlite")
	flag.StringVar(&o.databaseURL, "database-url", dbURL, "PostgreSQL to use (FERRY_BENCH_DATABASE_URL); a fresh schema is created in it and dropped")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "length of each timed repetition")
	flag.IntVar(&o.reps, "reps", 3, "repetitions of each workload; the median is reported")
	flag.IntVar(&o.bigReps, "big-reps", 1, "repetitions of the full pull of the large store")
	flag.BoolVar(&o.smoke, "smoke", false, "tiny sizes, one repetition, short runs: proves the program works in under a minute")
	flag.StringVar(&o.only, "only", "", "comma-separated workloads to run: single, batch, pull, incremental, large, spaces, blobs, compression, policies, realtime (default all)")
	flag.IntVar(&o.batch, "batch", 500, "changes per push in the batch workload")
	flag.IntVar(&o.changes, "changes", 100, "changes an incremental pull returns")
	flag.IntVar(&o.pullLimit, "pull-limit", 5000, "page size of full pulls (the protocol's maximum is 5000)")
	flag.IntVar(&o.pullRecords, "pull-records", 100_000, "records of the initial-pull store")
	flag.IntVar(&o.incSmall, "inc-small", 10_000, "records of the small incremental-pull store")
	flag.IntVar(&o.incLarge, "inc-large", 1_000_000, "records of the large store (full pull with RSS, then incremental pull)")
	flag.IntVar(&o.streams, "streams", 1000, "idle live streams the realtime workload opens on one replica (10000 for the 300 MB target)")
	flag.IntVar(&o.blobMB, "blob-mb", 100, "size of the file the blob workload uploads and downloads, in MiB")
	flag.IntVar(&o.blobChunkMB, "blob-chunk-mb", 32, "bytes per PATCH of the blob workload's uploads, in MiB (blobclient.DefaultChunkSize)")
	flag.IntVar(&o.hints, "hints", 300, "push-to-hint latency samples of the realtime workload")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write the server's CPU profile for the whole run to this file")
	flag.StringVar(&o.driverProfile, "driverprofile", "", "write the driver's (this process's) CPU profile for the whole run to this file")
	flag.StringVar(&o.memProfile, "memprofile", "", "write the server's allocation profile to this file at exit")
	flag.BoolVar(&o.quota, "quota", false, "give the server the example app's default per-user quota (100,000 records, 1 GiB), which turns usage accounting on; by default it has none, as the baseline")
	flag.StringVar(&o.serverURL, "server-url-params", "", "extra query parameters for the server's PostgreSQL URL only, for experiments (e.g. default_query_exec_mode=simple_protocol)")
	flag.Parse()
	if o.smoke {
		o.duration, o.reps, o.bigReps = 400*time.Millisecond, 1, 1
		o.batch, o.pullLimit = 100, 1000
		o.pullRecords, o.incSmall, o.incLarge = 3000, 1000, 10_000
		o.streams, o.hints = 50, 20
		o.blobMB = 16
	}
	if err := mainErr(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

func mainErr(o options) (err error) {
	if o.driverProfile != "" {
		stop, err := startCPUProfile(o.driverProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// A closed stdout (| head) must not kill us before the schema is
	// dropped: with SIGPIPE notified, writes fail instead.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	var raw [4]byte
	_, _ = rand.Read(raw[:])
	runID := hex.EncodeToString(raw[:])
	tmp, err := os.MkdirTemp("", "ferry-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	var secret [32]byte
	_, _ = rand.Read(secret[:])
	childArgs := []string{"-data-dir", tmp, "-secret", hex.EncodeToString(secret[:])}
	if o.quota {
		childArgs = append(childArgs, "-quota")
	}

	b := &bencher{ctx: ctx, opt: o, store: o.store, runID: runID, tmp: tmp}
	var schemaURL string
	switch o.store {
	case "postgres":
		var drop func() error
		schemaURL, drop, err = createSchema(ctx, o.databaseURL, "ferry_bench_"+runID)
		if err != nil {
			return err
		}
		defer func() {
			if derr := drop(); derr != nil {
				err = errors.Join(err, derr)
			}
		}()
		serverURL, err := addParams(schemaURL, o.serverURL)
		if err != nil {
			return err
		}
		childArgs = append(childArgs, "-database-url", serverURL)
		b.schemaURL = schemaURL
	case "sqlite":
		childArgs = append(childArgs, "-sqlite", filepath.Join(tmp, "ferry.db"))
	default:
		return fmt.Errorf("-store must be postgres or sqlite, not %q", o.store)
	}

	if o.store == "postgres" {
		if b.db, err = models.OpenPostgres(ctx, schemaURL); err != nil {
			return err
		}
		if b.base, err = openBaseline(ctx, schemaURL, 8); err != nil {
			return err
		}
		defer b.base.close()
	} else {
		if b.db, err = models.OpenSQLite(ctx, filepath.Join(tmp, "ferry.db")); err != nil {
			return err
		}
	}
	defer b.db.Close()
	logf("store %s, %s x %d repetitions", o.store, o.duration, o.reps)

	var results []Result
	b.emit = func(r Result) {
		results = append(results, r)
		line, _ := json.Marshal(r)
		fmt.Println(string(line))
	}
	want := func(name string) bool {
		if o.only == "" {
			return true
		}
		for _, s := range strings.Split(o.only, ",") {
			if strings.TrimSpace(s) == name {
				return true
			}
		}
		return false
	}
	steps := []struct {
		name string
		fn   func() error
	}{
		{"single", func() error {
			if err := b.single(1); err != nil {
				return err
			}
			return b.single(8)
		}},
		{"batch", func() error { return b.batch(8) }},
		{"pull", func() error {
			ps, err := b.seedStore(o.pullRecords)
			if err != nil {
				return err
			}
			return b.initialPull("pull_initial_"+size(o.pullRecords), ps, o.reps, false)
		}},
		{"incremental", func() error {
			ps, err := b.seedStore(o.incSmall)
			if err != nil {
				return err
			}
			return b.incrementalPull(fmt.Sprintf("pull_incremental_%d_of_%s", o.changes, size(o.incSmall)), ps)
		}},
		{"large", func() error {
			ps, err := b.seedStore(o.incLarge)
			if err != nil {
				return err
			}
			if err := b.initialPull("pull_initial_"+size(o.incLarge)+"_rss", ps, o.bigReps, true); err != nil {
				return err
			}
			return b.incrementalPull(fmt.Sprintf("pull_incremental_%d_of_%s", o.changes, size(o.incLarge)), ps)
		}},
		{"spaces", b.spaceWorkloads},
		{"blobs", func() error { return b.blobs(o.blobMB, o.blobChunkMB) }},
		{"compression", func() error {
			ps, err := b.seedStore(o.pullRecords)
			if err != nil {
				return err
			}
			if err := varyNotes(b.ctx, b.db, ps.prefix, ps.size); err != nil {
				return err
			}
			return b.compressionPull(ps)
		}},
		{"policies", b.policyWorkloads},
		{"realtime", nil}, // two replicas per bus: run below
	}
	start := time.Now()
	for _, s := range steps {
		if !want(s.name) {
			continue
		}
		t0 := time.Now()
		if s.name == "realtime" {
			if err := b.realtimeSteps(childArgs); err != nil {
				return err
			}
		} else if err := b.step(childArgs, s.name, s.fn); err != nil {
			return err
		}
		logf("%s done in %s", s.name, time.Since(t0).Round(time.Millisecond))
	}
	printTable(results)
	printRealtime(b.realtimeResults)
	printBlobs(b.blobResults)
	printCompression(b.compressionResults)
	logf("total %s", time.Since(start).Round(time.Millisecond))
	return nil
}

// step runs one group of workloads against a server process of its own,
// so each group's RSS and profiles are its own and not what earlier
// groups left in the heap. Profiles get the group's name as a suffix
// (cpu.out becomes cpu-batch.out).
func (b *bencher) step(args []string, name string, fn func() error) (err error) {
	args = append([]string(nil), args...)
	for _, p := range []struct{ flag, path string }{{"-cpuprofile", b.opt.cpuProfile}, {"-memprofile", b.opt.memProfile}} {
		if p.path != "" {
			abs, _ := filepath.Abs(p.path)
			ext := filepath.Ext(abs)
			args = append(args, p.flag, strings.TrimSuffix(abs, ext)+"-"+name+ext)
		}
	}
	c, err := startChild(b.ctx, args)
	if err != nil {
		return err
	}
	defer func() {
		if serr := c.stop(); serr != nil {
			err = errors.Join(err, fmt.Errorf("server: %w", serr))
		}
	}()
	b.pid = c.pid()
	b.d = newDriver(c.addr, 8)
	defer b.d.hc.CloseIdleConnections()
	if rss, _, err := procMem(b.pid); err == nil {
		logf("%s: server pid %d on %s, RSS at start %.1f MB", name, b.pid, c.addr, rss)
	}
	return fn()
}

// realtimeSteps runs the realtime workload on each bus, two server
// processes per bus (they read the bus from FERRY_REALTIME_BUS). Across
// replicas needs PostgreSQL; NATS is skipped when it does not answer.
func (b *bencher) realtimeSteps(args []string) error {
	if b.store != "postgres" {
		logf("realtime: skipped on %s (replicas share a PostgreSQL)", b.store)
		return nil
	}
	prev, had := os.LookupEnv("FERRY_REALTIME_BUS")
	defer func() {
		if had {
			os.Setenv("FERRY_REALTIME_BUS", prev)
		} else {
			os.Unsetenv("FERRY_REALTIME_BUS")
		}
	}()
	for _, bus := range []string{"postgres", "nats"} {
		if bus == "nats" && !natsReachable() {
			logf("realtime: NATS does not answer; the nats bus is skipped")
			continue
		}
		os.Setenv("FERRY_REALTIME_BUS", bus)
		if err := b.step(args, "realtime-"+bus, func() error { return b.realtime(args, bus) }); err != nil {
			return fmt.Errorf("realtime on %s: %w", bus, err)
		}
	}
	return nil
}

// size names a record count: 100k, 1m, 3000.
func size(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%dm", n/1_000_000)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

func printTable(rs []Result) {
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "workload\trecords/s\tbaseline/s\tratio\tp50 ms\tp95 ms\tp99 ms\tbase p50 ms\tserver RSS MB\t")
	for _, r := range rs {
		fmt.Fprintf(w, "%s\t%.0f\t%.0f\t%.3f\t%.2f\t%.2f\t%.2f\t%.2f\t%.1f\t\n",
			r.Workload, r.RecordsPerS, r.BaselinePerS, r.Ratio, r.P50, r.P95, r.P99, r.BaselineP50, r.ServerRSSMB)
	}
	w.Flush()
}

// addParams adds URL query parameters (a=b&c=d) to a database URL.
func addParams(dsn, params string) (string, error) {
	if params == "" {
		return dsn, nil
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "", err
	}
	extra, err := url.ParseQuery(params)
	if err != nil {
		return "", fmt.Errorf("-server-url-params: %w", err)
	}
	q := u.Query()
	for k, vs := range extra {
		for _, v := range vs {
			q.Set(k, v)
		}
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// createSchema makes a fresh schema and returns a URL whose search_path
// points at it, and a function dropping it.
func createSchema(ctx context.Context, base, schema string) (string, func() error, error) {
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return "", nil, fmt.Errorf("connect to PostgreSQL (-database-url): %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		return "", nil, fmt.Errorf("create schema: %w", err)
	}
	drop := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			return fmt.Errorf("drop schema %s: %w", schema, err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			return fmt.Errorf("drop schema %s: %w", schema, err)
		}
		return nil
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", nil, errors.Join(err, drop())
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), drop, nil
}
