// Package database opens the one pgx pool that Perks shares between bun and
// River, and runs the embedded migrations.
package database

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/migrate"

	"github.com/perkshq/perks/migrations"
)

// DB bundles the pool (for River's pgx driver and raw pgx work such as COPY)
// with the bun handle over the same pool.
type DB struct {
	Pool *pgxpool.Pool
	SQL  *sql.DB
	Bun  *bun.DB
	// Statements counts what the pool sends, when opened with
	// Options.Counter (tests).
	Statements *StatementCounter
}

// LockTimeout is the session lock_timeout of pooled connections.
const LockTimeout = "5s"

// Open connects to url. bun formats queries with their arguments inlined, so
// with pgx's default statement cache every distinct SQL text would be
// prepared and cached; QueryExecModeExec runs them unprepared in one round
// trip instead (measured in `make bench`).
func Open(ctx context.Context, url string, maxConns int32) (*DB, error) {
	return OpenWith(ctx, url, Options{MaxConns: maxConns})
}

// Options adjust OpenWith.
type Options struct {
	MaxConns int32
	// Pooled says url goes through a pooler in transaction mode (PgBouncer):
	// consecutive transactions of one client connection may run on
	// different server sessions, so nothing may rely on a session. The
	// pool then sends no session setting at connect (PgBouncer refuses
	// unknown startup parameters; lock_timeout must be set on the role),
	// and the hot paths' statements are no longer prepared by name (a
	// named statement exists only in the session that prepared it).
	Pooled bool
	// Counter, when set, counts the pool's statements (DB.Statements).
	Counter *StatementCounter
}

// OpenWith connects to url with o.
func OpenWith(ctx context.Context, url string, o Options) (*DB, error) {
	maxConns := o.MaxConns
	if o.Pooled {
		named.Store(false)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	cfg.MaxConnIdleTime = 5 * time.Minute
	if cfg.ConnConfig.RuntimeParams == nil {
		cfg.ConnConfig.RuntimeParams = map[string]string{}
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = "perks"
	// No request waits on a row lock for long: a duplicate idempotent request
	// waiting for its original, or a claim waiting for a hot stock row, gives
	// up after this and answers a retryable error instead of piling up.
	if _, ok := cfg.ConnConfig.RuntimeParams["lock_timeout"]; !ok && !o.Pooled {
		cfg.ConnConfig.RuntimeParams["lock_timeout"] = LockTimeout
	}
	cfg.AfterConnect = scanTimesInUTC
	if o.Counter != nil {
		cfg.ConnConfig.Tracer = o.Counter
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open pool: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	sqldb := stdlib.OpenDBFromPool(pool)
	// Tables gain columns the structs do not map (xid, for instance); RETURNING *
	// must not fail on them.
	return &DB{Pool: pool, SQL: sqldb, Bun: bun.NewDB(sqldb, pgdialect.New(), bun.WithDiscardUnknownColumns()), Statements: o.Counter}, nil
}

// scanTimesInUTC makes every timestamptz read from PostgreSQL a UTC time,
// so the API writes it with a Z whatever the host's TZ and the session's
// TimeZone. pgx returns them in time.Local otherwise: in the binary format
// (prepared statements, River) always, and since pgx 5.11 in the text format
// (every bun query, QueryExecModeExec) too, where it used to keep the
// server's offset.
func scanTimesInUTC(_ context.Context, c *pgx.Conn) error {
	tm := c.TypeMap()
	tz := &pgtype.Type{Name: "timestamptz", OID: pgtype.TimestamptzOID, Codec: &pgtype.TimestamptzCodec{ScanLocation: time.UTC}}
	tm.RegisterType(tz)
	tm.RegisterType(&pgtype.Type{Name: "_timestamptz", OID: pgtype.TimestamptzArrayOID, Codec: &pgtype.ArrayCodec{ElementType: tz}})
	return nil
}

// Close closes bun and the pool.
func (d *DB) Close() {
	_ = d.Bun.Close()
	d.Pool.Close()
}

func migrator(db *bun.DB) *migrate.Migrator {
	return migrate.NewMigrator(db, migrations.Set, migrate.WithMarkAppliedOnSuccess(true))
}

// Migrate applies every pending migration. Concurrent callers (several
// replicas starting together) serialise on an advisory lock.
func Migrate(ctx context.Context, db *bun.DB, log *slog.Logger) error {
	return run(ctx, db, log, "migrate", (*migrate.Migrator).Migrate, "database schema is up to date", "database migrated")
}

// run applies one migrator operation under the migration lock.
func run(ctx context.Context, db *bun.DB, log *slog.Logger, name string,
	op func(*migrate.Migrator, context.Context, ...migrate.MigrationOption) (*migrate.MigrationGroup, error),
	none, done string,
) error {
	unlock, err := advisoryLock(ctx, db)
	if err != nil {
		return err
	}
	defer unlock()
	m := migrator(db)
	if err := m.Init(ctx); err != nil {
		return fmt.Errorf("init migrations: %w", err)
	}
	group, err := op(m, ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if group.IsZero() {
		log.Info(none)
	} else {
		log.Info(done, "group", group.ID, "migrations", group.Migrations.String())
	}
	return nil
}

// migrationLockKey is an arbitrary constant shared by every replica.
const migrationLockKey = 7_482_901_334

// advisoryLock serialises migrations across processes with a session-level
// advisory lock held on one dedicated connection. Unlike bun's lock table it
// is released by PostgreSQL if the process dies mid-migration.
func advisoryLock(ctx context.Context, db *bun.DB) (func(), error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("migration lock connection: %w", err)
	}
	// Another replica may migrate for longer than the pool's lock_timeout.
	if _, err := conn.ExecContext(ctx, "SET lock_timeout = 0"); err != nil {
		conn.Close()
		return nil, fmt.Errorf("migration lock connection: %w", err)
	}
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock(?)", migrationLockKey); err != nil {
		conn.Close()
		return nil, fmt.Errorf("take migration lock: %w", err)
	}
	return func() {
		_, _ = conn.ExecContext(context.Background(), "SELECT pg_advisory_unlock(?)", migrationLockKey)
		_, _ = conn.ExecContext(context.Background(), "RESET lock_timeout")
		conn.Close()
	}, nil
}

// ErrPending is returned by Check when migrations are not applied yet.
var ErrPending = errors.New("database has unapplied migrations")

// Check reports ErrPending when some embedded migration is not applied; /readyz
// uses it so a replica never serves against an older schema.
func Check(ctx context.Context, db *bun.DB) error {
	ms, err := migrator(db).MigrationsWithStatus(ctx)
	if err != nil {
		return fmt.Errorf("migration status: %w", err)
	}
	if un := ms.Unapplied(); len(un) > 0 {
		return fmt.Errorf("%w: %s", ErrPending, un.String())
	}
	return nil
}

// Statuses returns every migration with its applied state, oldest first.
func Statuses(ctx context.Context, db *bun.DB) (migrate.MigrationSlice, error) {
	m := migrator(db)
	if err := m.Init(ctx); err != nil {
		return nil, fmt.Errorf("init migrations: %w", err)
	}
	ms, err := m.MigrationsWithStatus(ctx)
	if err != nil {
		return nil, fmt.Errorf("migration status: %w", err)
	}
	return ms, nil
}

// Status writes the applied/pending state of every migration.
func Status(ctx context.Context, db *bun.DB, w io.Writer) error {
	ms, err := Statuses(ctx, db)
	if err != nil {
		return err
	}
	for _, mg := range ms {
		state := "pending"
		if mg.IsApplied() {
			state = fmt.Sprintf("applied (group %d, %s)", mg.GroupID, mg.MigratedAt.Format(time.RFC3339))
		}
		fmt.Fprintf(w, "%-40s %s\n", mg.Name+"_"+mg.Comment, state)
	}
	fmt.Fprintf(w, "%d migrations, %d pending\n", len(ms), len(ms.Unapplied()))
	return nil
}

// IsUniqueViolation reports whether err is a unique-constraint violation,
// optionally of the named constraint.
func IsUniqueViolation(err error, constraint string) bool {
	var pgErr interface {
		SQLState() string
	}
	if !errors.As(err, &pgErr) || pgErr.SQLState() != "23505" {
		return false
	}
	if constraint == "" {
		return true
	}
	return strings.Contains(err.Error(), constraint)
}
