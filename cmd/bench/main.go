// Command bench runs Perks' benchmark scenarios (`make bench`) against a real
// PostgreSQL and the application built in-process, and prints one table.
//
// The database comes from BENCH_DATABASE_URL, or a private cluster under
// .data/bench-postgres on port 54331 started with scripts/pgcluster.sh. Every
// run works in a fresh database (migrated, then dropped), so runs do not see
// each other's rows.
//
// Scenarios live one per file and register themselves in init:
//
//	func init() { register(Scenario{Name: "...", Description: "...", Run: run...}) }
//
// Absolute numbers swing with the machine; compare ratios measured in one run.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/perkshq/perks/internal/app"
	"github.com/perkshq/perks/internal/config"
	"github.com/perkshq/perks/internal/database"
	"github.com/perkshq/perks/internal/keyring"
)

// Scenario is one benchmark.
type Scenario struct {
	Name        string
	Description string
	Run         func(ctx context.Context, env *Env) ([]Result, error)
}

// Result is one line of the table.
type Result struct {
	Metric string
	Value  float64
	Unit   string
	Note   string
}

var scenarios []Scenario

func register(s Scenario) { scenarios = append(scenarios, s) }

// Env is what a scenario gets from the harness.
type Env struct {
	// Duration is the time budget of a scenario's timed phases.
	Duration time.Duration
	// Settings are PERKS_* overrides for apps built with NewApp (flags and
	// the process environment already applied).
	Settings map[string]string
	Log      *slog.Logger

	adminURL string
	cleanups []func()
}

// NewDatabase creates a fresh database, applies the migrations and returns
// it; it is dropped when the run ends.
func (e *Env) NewDatabase(ctx context.Context, maxConns int32) (*database.DB, error) {
	name := fmt.Sprintf("perks_bench_%d", time.Now().UnixNano())
	if err := e.admin(ctx, "CREATE DATABASE "+name); err != nil {
		return nil, err
	}
	e.cleanups = append(e.cleanups, func() {
		_ = e.admin(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	u, err := url.Parse(e.adminURL)
	if err != nil {
		return nil, err
	}
	u.Path = "/" + name
	db, err := database.Open(ctx, u.String(), maxConns)
	if err != nil {
		return nil, err
	}
	e.cleanups = append(e.cleanups, db.Close)
	if err := database.Migrate(ctx, db.Bun, slog.New(slog.DiscardHandler)); err != nil {
		return nil, err
	}
	return db, nil
}

func (e *Env) admin(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, e.adminURL)
	if err != nil {
		return fmt.Errorf("connect to the bench cluster: %w", err)
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// NewApp builds the application on db with the harness settings plus
// overrides, serves it on a loopback listener and runs its River workers.
// It returns the app and its base URL; it stops when the run ends.
func (e *Env) NewApp(ctx context.Context, db *database.DB, overrides map[string]string) (*app.App, string, error) {
	settings := map[string]string{
		"PERKS_ENV":         config.EnvDevelopment,
		"PERKS_SECRETS_DIR": os.TempDir(),
		"PERKS_WORKERS":     "true",
		"PERKS_LOG_LEVEL":   "warn",
	}
	for k, v := range e.Settings {
		settings[k] = v
	}
	for k, v := range overrides {
		settings[k] = v
	}
	cfg, err := config.Load(func(k string) string { return settings[k] })
	if err != nil {
		return nil, "", err
	}
	master := make([]byte, keyring.KeySize)
	_, _ = rand.Read(master)
	keys, err := keyring.New(master)
	if err != nil {
		return nil, "", err
	}
	a, err := app.New(cfg, e.Log, db, keys)
	if err != nil {
		return nil, "", err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	actx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Serve(actx, ln) }()
	e.cleanups = append(e.cleanups, func() {
		cancel()
		<-done
	})
	return a, "http://" + ln.Addr().String(), nil
}

func (e *Env) close() {
	for i := len(e.cleanups) - 1; i >= 0; i-- {
		e.cleanups[i]()
	}
	e.cleanups = nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	which := fs.String("scenario", "", "comma-separated scenarios to run (default: all)")
	duration := fs.Duration("duration", 5*time.Second, "time budget of each timed phase")
	list := fs.Bool("list", false, "list the scenarios and exit")
	cooldown := fs.Duration("fetch-cooldown", 0, "River FetchCooldown (default: PERKS_RIVER_FETCH_COOLDOWN or its default)")
	poll := fs.Duration("fetch-poll-interval", 0, "River FetchPollInterval (default: PERKS_RIVER_FETCH_POLL_INTERVAL or its default)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	sort.Slice(scenarios, func(i, j int) bool { return scenarios[i].Name < scenarios[j].Name })
	if *list {
		for _, s := range scenarios {
			fmt.Fprintf(stdout, "%-20s %s\n", s.Name, s.Description)
		}
		return nil
	}
	selected := scenarios
	if *which != "" {
		selected = nil
		for _, name := range strings.Split(*which, ",") {
			found := false
			for _, s := range scenarios {
				if s.Name == strings.TrimSpace(name) {
					selected, found = append(selected, s), true
				}
			}
			if !found {
				return fmt.Errorf("unknown scenario %q (see -list)", name)
			}
		}
	}

	adminURL, err := cluster(ctx, stderr)
	if err != nil {
		return err
	}
	settings := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "PERKS_") {
			settings[k] = v
		}
	}
	if *cooldown > 0 {
		settings["PERKS_RIVER_FETCH_COOLDOWN"] = cooldown.String()
	}
	if *poll > 0 {
		settings["PERKS_RIVER_FETCH_POLL_INTERVAL"] = poll.String()
	}

	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tmetric\tvalue\tunit\t\tnote")
	var failed []string
	for _, s := range selected {
		fmt.Fprintf(stderr, "bench: running %s: %s\n", s.Name, s.Description)
		env := &Env{Duration: *duration, Settings: settings, Log: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})), adminURL: adminURL}
		start := time.Now()
		results, err := s.Run(ctx, env)
		env.close()
		if err != nil {
			failed = append(failed, s.Name)
			fmt.Fprintf(stderr, "bench: %s failed: %v\n", s.Name, err)
			continue
		}
		for _, r := range results {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\t%s\n", s.Name, r.Metric, format(r.Value), r.Unit, r.Note)
		}
		fmt.Fprintf(stderr, "bench: %s took %s\n", s.Name, time.Since(start).Round(100*time.Millisecond))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(failed) > 0 {
		return fmt.Errorf("failed scenarios: %s", strings.Join(failed, ", "))
	}
	return nil
}

func format(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// cluster returns the admin URL of the bench cluster: BENCH_DATABASE_URL,
// or the private one, started when needed.
func cluster(ctx context.Context, stderr io.Writer) (string, error) {
	raw := os.Getenv("BENCH_DATABASE_URL")
	if raw == "" {
		root, err := repoRoot()
		if err != nil {
			return "", err
		}
		script := filepath.Join(root, "scripts", "pgcluster.sh")
		dataDir := filepath.Join(root, ".data", "bench-postgres")
		start := exec.CommandContext(ctx, script, "start", dataDir, "54331")
		start.Stdout, start.Stderr = stderr, stderr
		if err := start.Run(); err != nil {
			return "", fmt.Errorf("start the bench cluster: %w", err)
		}
		out, err := exec.CommandContext(ctx, script, "url", dataDir, "54331").Output()
		if err != nil {
			return "", fmt.Errorf("bench cluster url: %w", err)
		}
		raw = strings.TrimSpace(string(out))
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("parse BENCH_DATABASE_URL: %w", err)
	}
	u.Path = "/postgres"
	return u.String(), nil
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run the bench from the repository (go.mod not found)")
		}
		dir = parent
	}
}
