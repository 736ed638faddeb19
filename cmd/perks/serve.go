package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/urfave/cli/v3"

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

func serveCommand() *cli.Command {
	var env strings.Builder
	config.Usage(&env)
	return &cli.Command{
		Name:  "serve",
		Usage: "run the HTTP API and River workers",
		Description: "Serves the REST and GraphQL APIs on PERKS_ADDR and works River jobs.\n\n" +
			"Environment:\n" + env.String(),
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "workers-only", Usage: "work River jobs without serving HTTP"},
			&cli.BoolFlag{Name: "migrate", Usage: "apply pending migrations before serving"},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			stdout, stderr := cmd.Root().Writer, cmd.Root().ErrWriter
			cfg, db, closeDB, err := open(ctx, stderr)
			if err != nil {
				return err
			}
			defer closeDB()
			log := newLogger(stdout, cfg.LogLevel)
			if cmd.Bool("migrate") {
				if err := database.Migrate(ctx, db.Bun, log); err != nil {
					return err
				}
			}
			keys, err := app.LoadKeyringFor(ctx, cfg, log, db.Bun)
			if err != nil {
				return err
			}
			workersOnly := cmd.Bool("workers-only")
			if workersOnly {
				cfg.Workers = true
			}
			a, err := app.New(cfg, log, db, keys)
			if err != nil {
				return err
			}
			if workersOnly {
				return a.WorkOnly(ctx)
			}
			ln, err := net.Listen("tcp", cfg.Addr)
			if err != nil {
				return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
			}
			return a.Serve(ctx, ln)
		},
	}
}

func seedCommand() *cli.Command {
	return &cli.Command{
		Name:  "seed",
		Usage: "seed the demo partners acme and globex (idempotent)",
		Action: func(ctx context.Context, cmd *cli.Command) error {
			stdout, stderr := cmd.Root().Writer, cmd.Root().ErrWriter
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
		},
	}
}
