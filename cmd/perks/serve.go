package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/perkshq/perks/internal/app"
	"github.com/perkshq/perks/internal/config"
	"github.com/perkshq/perks/internal/database"
	"github.com/perkshq/perks/internal/demo"
	"github.com/perkshq/perks/internal/tracing"
)

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
			stdout := cmd.Root().Writer
			cfg, db, closeDB, err := open(ctx, cmd)
			if err != nil {
				return err
			}
			defer closeDB()
			log := newLogger(stdout, cfg.LogLevel)
			if cmd.Bool("migrate") {
				_, mdb, closeM, err := openSession(ctx, cmd)
				if err != nil {
					return err
				}
				err = database.Migrate(ctx, mdb.Bun, log)
				closeM()
				if err != nil {
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
			var opts []app.Option
			if cfg.ReadDatabaseURL != "" {
				read, err := database.Open(ctx, cfg.ReadDatabaseURL, cfg.DBMaxConns)
				if err != nil {
					return fmt.Errorf("read database (PERKS_READ_DATABASE_URL): %w", err)
				}
				defer read.Close()
				opts = append(opts, app.WithReadDB(read))
			}
			if cfg.DirectDatabaseURL != "" {
				// River's work client only: fetches, completions, the leader
				// and the listener; the jobs themselves use the pooled database.
				direct, err := database.Open(ctx, cfg.DirectDatabaseURL, 10)
				if err != nil {
					return fmt.Errorf("direct database (PERKS_DIRECT_DATABASE_URL): %w", err)
				}
				defer direct.Close()
				opts = append(opts, app.WithDirectDB(direct))
			}
			tp, err := tracing.FromEnv(ctx, os.Getenv, cmd.Root().Version)
			if err != nil {
				return err
			}
			if tp != nil {
				opts = append(opts, app.WithTracerProvider(tp))
				log.Info("tracing on: exporting spans over OTLP/HTTP")
				defer func() {
					sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					defer cancel()
					if err := tp.Shutdown(sctx); err != nil {
						log.Warn("tracing: spans not flushed at shutdown", "err", err)
					}
				}()
			}
			if gc := app.TuneRuntime(cfg, os.Getenv); gc > 0 {
				log.Info("garbage collector target set (PERKS_GC_PERCENT)", "gc_percent", gc)
			}
			a, err := app.New(cfg, log, db, keys, opts...)
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
			stdout := cmd.Root().Writer
			o, closeDB, err := openOperator(ctx, cmd, withKeysLogged)
			if err != nil {
				return err
			}
			defer closeDB()
			// The seed dispatches no webhook: its services get no job
			// inserter (app.Services.ConnectJobs).
			svc := o.svc
			s := &demo.Seeder{
				DB: o.db.Bun, Partners: svc.Partners, Earning: svc.Earning, Content: svc.Content, SecretsDir: o.cfg.SecretsDir,
				Webhooks: svc.Webhooks, DemoWebhookURL: o.cfg.DemoWebhookURL, Catalog: svc.Catalog, Merchants: svc.Merchants,
			}
			_, err = s.Run(ctx, stdout)
			return err
		},
	}
}
