package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/perkshq/perks/internal/app"
	"github.com/perkshq/perks/internal/catalog"
	"github.com/perkshq/perks/internal/config"
	"github.com/perkshq/perks/internal/content"
	"github.com/perkshq/perks/internal/database"
	"github.com/perkshq/perks/internal/demo"
	"github.com/perkshq/perks/internal/earning"
	"github.com/perkshq/perks/internal/merchant"
	"github.com/perkshq/perks/internal/partner"
	"github.com/perkshq/perks/internal/webhook"
)

// open loads the configuration, the logger and the database.
func open(ctx context.Context, stderr io.Writer) (*config.Config, *database.DB, func(), error) {
	cfg, err := config.FromEnv()
	if err != nil {
		return nil, nil, nil, err
	}
	if cfg.DatabaseURL == "" {
		return nil, nil, nil, errors.New("DATABASE_URL is unset (use `make run`, which starts a private PostgreSQL, or set it)")
	}
	db, err := database.Open(ctx, cfg.DatabaseURL, cfg.DBMaxConns)
	if err != nil {
		return nil, nil, nil, err
	}
	return cfg, db, db.Close, nil
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	workersOnly := fs.Bool("workers-only", false, "work River jobs without serving HTTP")
	migrate := fs.Bool("migrate", false, "apply pending migrations before serving")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: perks serve [--workers-only] [--migrate]\n\nFlags:")
		fs.PrintDefaults()
		fmt.Fprintln(stderr, "\nEnvironment:")
		config.Usage(stderr)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, db, closeDB, err := open(ctx, stderr)
	if err != nil {
		return err
	}
	defer closeDB()
	log := newLogger(stdout, cfg.LogLevel)
	if *migrate {
		if err := database.Migrate(ctx, db.Bun, log); err != nil {
			return err
		}
	}
	keys, err := app.LoadKeyringFor(ctx, cfg, log, db.Bun)
	if err != nil {
		return err
	}
	if *workersOnly {
		cfg.Workers = true
	}
	a, err := app.New(cfg, log, db, keys)
	if err != nil {
		return err
	}
	if *workersOnly {
		return a.WorkOnly(ctx)
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	return a.Serve(ctx, ln)
}

func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, "Usage: perks migrate [up|down|status]") }
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, db, closeDB, err := open(ctx, stderr)
	if err != nil {
		return err
	}
	defer closeDB()
	log := newLogger(stderr, cfg.LogLevel)
	switch dir := fs.Arg(0); dir {
	case "", "up":
		return database.Migrate(ctx, db.Bun, log)
	case "down":
		return database.Rollback(ctx, db.Bun, log)
	case "status":
		return database.Status(ctx, db.Bun, stdout)
	default:
		fs.Usage()
		return errUsage
	}
}

func runSeed(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("seed", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, db, closeDB, err := open(ctx, stderr)
	if err != nil {
		return err
	}
	defer closeDB()
	log := newLogger(stderr, cfg.LogLevel)
	keys, err := app.LoadKeyringFor(ctx, cfg, log, db.Bun)
	if err != nil {
		return err
	}
	rules := earning.NewService(nil)
	merchants := merchant.NewService()
	s := &demo.Seeder{
		DB: db.Bun, Partners: partner.NewService(keys), Earning: rules,
		Content: &content.Service{Earning: rules, Now: time.Now}, SecretsDir: cfg.SecretsDir,
		Webhooks: &webhook.Service{Keys: keys, Policy: app.WebhookPolicy(cfg)}, DemoWebhookURL: cfg.DemoWebhookURL,
		Catalog: catalog.NewService(merchants), Merchants: merchants,
	}
	_, err = s.Run(ctx, stdout)
	return err
}
