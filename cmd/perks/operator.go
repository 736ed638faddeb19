package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/perkshq/perks/internal/app"
	"github.com/perkshq/perks/internal/config"
	"github.com/perkshq/perks/internal/database"
	"github.com/perkshq/perks/internal/keyring"
	"github.com/perkshq/perks/internal/partner"
)

// runner runs command lines with its own standard streams and environment:
// main gives the process's, tests their own, so that tests run in parallel
// without touching the process environment.
type runner struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	// lookupEnv reads the environment (os.LookupEnv when nil).
	lookupEnv func(string) (string, bool)
	// wait, when set, replaces the pause between two polls of
	// `perks jobs watch` (tests advance the job there).
	wait func(ctx context.Context, d time.Duration) error
	// now, when set, is this host's clock for `perks doctor` (tests skew it).
	now func() time.Time
}

// run builds a fresh command tree (urfave/cli commands hold their parse
// state, so a tree is used once) and runs args through it.
func (r runner) run(ctx context.Context, args ...string) error {
	return newApp(r).Run(ctx, append([]string{"perks"}, args...))
}

func (r runner) lookup() func(string) (string, bool) {
	if r.lookupEnv == nil {
		return os.LookupEnv
	}
	return r.lookupEnv
}

// envMetadata is the root command's Metadata key of the runner's lookup.
const envMetadata = "perks.lookupEnv"

// getenv returns the environment of the command line cmd belongs to.
func getenv(cmd *cli.Command) func(string) string {
	lookup, _ := cmd.Root().Metadata[envMetadata].(func(string) (string, bool))
	if lookup == nil {
		lookup = os.LookupEnv
	}
	return func(k string) string { v, _ := lookup(k); return v }
}

// envVars is cli.EnvVars over the runner's environment (help still shows
// the variables).
func envVars(lookup func(string) (string, bool), keys ...string) cli.ValueSourceChain {
	var c cli.ValueSourceChain
	for _, k := range keys {
		c.Chain = append(c.Chain, envVar{lookup: lookup, key: k})
	}
	return c
}

type envVar struct {
	lookup func(string) (string, bool)
	key    string
}

func (e envVar) Lookup() (string, bool) { return e.lookup(strings.TrimSpace(e.key)) }
func (e envVar) IsFromEnv() bool        { return true }
func (e envVar) Key() string            { return e.key }
func (e envVar) String() string         { return fmt.Sprintf("environment variable %q", e.key) }
func (e envVar) GoString() string       { return fmt.Sprintf("&envVar{Key:%q}", e.key) }

// open loads the configuration from the command line's environment and
// opens the database: all that migrations need.
func open(ctx context.Context, cmd *cli.Command) (*config.Config, *database.DB, func(), error) {
	cfg, err := config.Load(getenv(cmd))
	if err != nil {
		return nil, nil, nil, err
	}
	if cfg.DatabaseURL == "" {
		return nil, nil, nil, errors.New("DATABASE_URL is unset (use `make run`, which starts a private PostgreSQL, or set it)")
	}
	db, err := database.OpenWith(ctx, cfg.DatabaseURL, database.Options{MaxConns: cfg.DBMaxConns, Pooled: cfg.Pooler != ""})
	if err != nil {
		return nil, nil, nil, err
	}
	return cfg, db, db.Close, nil
}

// openSession is open for the commands that need a database session of
// their own (migrations hold a session advisory lock): behind a
// transaction pooler they connect to PERKS_DIRECT_DATABASE_URL.
func openSession(ctx context.Context, cmd *cli.Command) (*config.Config, *database.DB, func(), error) {
	cfg, err := config.Load(getenv(cmd))
	if err != nil {
		return nil, nil, nil, err
	}
	if cfg.Pooler == "" {
		return open(ctx, cmd)
	}
	if cfg.DirectDatabaseURL == "" {
		return nil, nil, nil, errors.New("migrations hold a session lock, which a transaction pooler cannot keep: set PERKS_DIRECT_DATABASE_URL to a connection that bypasses it (docs/scaling.md)")
	}
	db, err := database.Open(ctx, cfg.DirectDatabaseURL, 2)
	if err != nil {
		return nil, nil, nil, err
	}
	return cfg, db, db.Close, nil
}

// operator is what every command past migrations works with: the
// configuration, the database and the domain services, built by
// app.NewServices as the server builds them.
type operator struct {
	cfg  *config.Config
	db   *database.DB
	log  *slog.Logger
	keys *keyring.Keyring
	svc  *app.Services
}

// keyNeed says whether a command seals or unseals secrets, and so needs
// the master keyring (checked against the database).
type keyNeed int

const (
	noKeys keyNeed = iota
	// withKeys loads the keyring quietly: operator commands print only
	// their results.
	withKeys
	// withKeysLogged loads it with the development-key warning on stderr
	// (seed, webhook).
	withKeysLogged
)

// openOperator opens the database and builds the services with
// app.NewServices; with withKeys or withKeysLogged it loads the master
// keyring first (app.LoadKeyringFor). The services log warnings to stderr.
func openOperator(ctx context.Context, cmd *cli.Command, need keyNeed) (*operator, func(), error) {
	cfg, db, closeDB, err := open(ctx, cmd)
	if err != nil {
		return nil, nil, err
	}
	stderr := cmd.Root().ErrWriter
	o := &operator{cfg: cfg, db: db, log: newLogger(stderr, "warn")}
	if need != noKeys {
		keyLog := newLogger(io.Discard, "error")
		if need == withKeysLogged {
			keyLog = newLogger(stderr, cfg.LogLevel)
		}
		if o.keys, err = app.LoadKeyringFor(ctx, cfg, keyLog, db.Bun); err != nil {
			closeDB()
			return nil, nil, err
		}
	}
	o.svc = app.NewServices(cfg, o.log, db, o.keys, nil)
	return o, closeDB, nil
}

// openPartner is openOperator followed by loading the --partner flag's
// partner, the start of most operator commands.
func openPartner(ctx context.Context, cmd *cli.Command, need keyNeed) (*operator, *partner.Partner, func(), error) {
	slug, err := requirePartner(cmd)
	if err != nil {
		return nil, nil, nil, err
	}
	o, closeDB, err := openOperator(ctx, cmd, need)
	if err != nil {
		return nil, nil, nil, err
	}
	p, err := o.svc.Partners.BySlug(ctx, o.db.Bun, slug)
	if err != nil {
		closeDB()
		return nil, nil, nil, fmt.Errorf("partner %s: %w", slug, err)
	}
	return o, p, closeDB, nil
}
