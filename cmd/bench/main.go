// Command bench is Perks' benchmark harness (`make bench`). It starts its
// own PostgreSQL (unless BENCH_DATABASE_URL is set), creates a fresh
// database, migrates and seeds it, runs the application in-process on a
// loopback listener, and drives it with concurrent clients. Every scenario
// also measures a bare baseline (raw pgx or net/http doing the same work) in
// the same run, because absolute numbers swing from machine to machine while
// ratios measured together do not.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/perkshq/perks/internal/app"
	"github.com/perkshq/perks/internal/config"
	"github.com/perkshq/perks/internal/database"
	"github.com/perkshq/perks/internal/demo"
	"github.com/perkshq/perks/internal/keyring"
)

// Row is one line of the result table.
type Row struct {
	Scenario string
	Variant  string
	Clients  int
	Rate     float64 // operations per second
	Unit     string
	P50, P99 time.Duration
	Note     string
}

// Scenario is one benchmark.
type Scenario struct {
	Name string
	Run  func(ctx context.Context, b *Bench) ([]Row, error)
}

var scenarios []Scenario

// heavy scenarios run after the others.
var heavy = map[string]bool{"export": true, "ranking": true}

func register(s Scenario) { scenarios = append(scenarios, s) }

// Bench is the environment a scenario runs in.
type Bench struct {
	Duration time.Duration
	DB       *database.DB
	DBURL    string
	App      *app.App
	URL      string
	Client   *http.Client
	Secrets  string
	Log      *slog.Logger
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	only := flag.String("scenario", "all", "comma-separated scenarios to run (all: every one)")
	dur := flag.Duration("duration", 20*time.Second, "measurement time of each timed run")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run (server and load generator) to this file")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	ctx := context.Background()

	admin, err := adminURL()
	if err != nil {
		return err
	}
	name := fmt.Sprintf("perks_bench_%d", time.Now().Unix())
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return err
	}
	defer func() {
		_, _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		conn.Close(context.Background())
	}()
	dbURL := strings.Replace(admin, "/postgres?", "/"+name+"?", 1)

	db, err := database.Open(ctx, dbURL, 64)
	if err != nil {
		return err
	}
	defer db.Close()
	quiet := slog.New(slog.NewJSONHandler(io.Discard, nil))
	if os.Getenv("BENCH_LOG") != "" { // the server's errors, to debug a failing scenario
		quiet = slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	if err := database.Migrate(ctx, db.Bun, quiet); err != nil {
		return err
	}
	secrets, err := os.MkdirTemp("", "perks-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(secrets)
	// PERKS_CLAIMS_AT_ONCE, PERKS_CLAIMS_PER_GIFT and PERKS_GC_PERCENT
	// pass through, to compare settings.
	cfg, err := config.Load(func(k string) string {
		return map[string]string{"PERKS_SECRETS_DIR": secrets, "PERKS_WORKERS": "true", "PERKS_RATE_LIMIT_PER_MINUTE": "0", "PERKS_CONSUMER_RATE_LIMIT_PER_MINUTE": "0", "PERKS_DB_MAX_CONNS": "64", "PERKS_WEBHOOK_ALLOW_PRIVATE": "true", "PERKS_CLAIMS_PER_GIFT": os.Getenv("PERKS_CLAIMS_PER_GIFT"),
			"PERKS_CLAIMS_AT_ONCE": os.Getenv("PERKS_CLAIMS_AT_ONCE"), "PERKS_GC_PERCENT": os.Getenv("PERKS_GC_PERCENT")}[k]
	})
	if err != nil {
		return err
	}
	// The server runs as perks serve runs it (the bare loops share the
	// process, hence the collector's target).
	app.TuneRuntime(cfg, os.Getenv)
	keys, err := keyring.New([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		return err
	}
	a, err := app.New(cfg, quiet, db, keys)
	if err != nil {
		return err
	}
	defer a.StopBackground()
	seeder := &demo.Seeder{DB: db.Bun, Partners: a.Partners, Earning: a.Earning, Content: a.Content, Catalog: a.Catalog, Merchants: a.Merchants, SecretsDir: secrets}
	if _, err := seeder.Run(ctx, io.Discard); err != nil {
		return err
	}
	if err := a.Jobs.Start(ctx); err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = a.Jobs.Stop(sctx)
	}()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: a.Handler}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	b := &Bench{
		Duration: *dur, DB: db, DBURL: dbURL, App: a, URL: "http://" + ln.Addr().String(), Secrets: secrets, Log: quiet,
		Client: &http.Client{Transport: &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 512, IdleConnTimeout: time.Minute}},
	}
	want := map[string]bool{}
	for _, s := range strings.Split(*only, ",") {
		want[strings.TrimSpace(s)] = true
	}
	// The million-user scenarios load a lot of data: run them last so the
	// others are measured on a settled database and process.
	sort.SliceStable(scenarios, func(i, j int) bool {
		return !heavy[scenarios[i].Name] && heavy[scenarios[j].Name]
	})
	var rows []Row
	for _, s := range scenarios {
		if !want["all"] && !want[s.Name] {
			continue
		}
		fmt.Fprintf(os.Stderr, "running %s...\n", s.Name)
		r, err := s.Run(ctx, b)
		if err != nil {
			print(rows) // what was measured before the failure
			return fmt.Errorf("scenario %s: %w", s.Name, err)
		}
		rows = append(rows, r...)
	}
	print(rows)
	return nil
}

// adminURL returns a URL to the `postgres` database of the bench cluster.
func adminURL() (string, error) {
	if u := os.Getenv("BENCH_DATABASE_URL"); u != "" {
		return u, nil
	}
	root, err := os.Getwd()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, ".data", "bench-postgres")
	start := exec.Command(filepath.Join(root, "scripts", "pgcluster.sh"), "start", dir, "54331")
	start.Stderr = os.Stderr
	if err := start.Run(); err != nil {
		return "", fmt.Errorf("start bench cluster: %w", err)
	}
	return "postgres://postgres@127.0.0.1:54331/postgres?sslmode=disable", nil
}

func print(rows []Row) {
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tvariant\tclients\trate\tp50\tp99\tnote\t")
	for _, r := range rows {
		p50, p99 := "-", "-"
		if r.P50 > 0 {
			p50, p99 = fmtDur(r.P50), fmtDur(r.P99)
		}
		clients := "-"
		if r.Clients > 0 {
			clients = fmt.Sprint(r.Clients)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.0f %s\t%s\t%s\t%s\t\n", r.Scenario, r.Variant, clients, r.Rate, r.Unit, p50, p99, r.Note)
	}
	tw.Flush()
}

func fmtDur(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", float64(d.Microseconds()))
	case d < time.Second:
		return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000)
	}
	return d.Round(time.Millisecond).String()
}

// Percentile returns the p-th percentile (0..1) of every recorded latency.
func Percentile(samples []time.Duration, p float64) time.Duration {
	if len(samples) == 0 {
		return 0
	}
	sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
	i := int(float64(len(samples)-1) * p)
	return samples[i]
}

// Load runs op from clients goroutines for d and returns the completed
// operations per second and the latency percentiles. op gets the client's
// index and its iteration number and reports failure with an error, which
// stops the run.
func Load(ctx context.Context, clients int, d time.Duration, op func(ctx context.Context, client, i int) error) (float64, time.Duration, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	lat := make([][]time.Duration, clients)
	errc := make(chan error, clients)
	start := time.Now()
	for c := 0; c < clients; c++ {
		go func(c int) {
			for i := 0; ; i++ {
				if ctx.Err() != nil {
					errc <- nil
					return
				}
				t0 := time.Now()
				if err := op(ctx, c, i); err != nil {
					if ctx.Err() != nil {
						errc <- nil
						return
					}
					errc <- err
					cancel()
					return
				}
				lat[c] = append(lat[c], time.Since(t0))
			}
		}(c)
	}
	var firstErr error
	for c := 0; c < clients; c++ {
		if err := <-errc; err != nil && firstErr == nil {
			firstErr = err
		}
	}
	elapsed := time.Since(start)
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	return float64(len(all)) / elapsed.Seconds(), Percentile(all, 0.5), Percentile(all, 0.99), firstErr
}
