// Package dbtest gives tests real PostgreSQL with isolated state. It is
// imported only from _test.go files.
//
// The cluster comes from TEST_DATABASE_URL, or, when unset, a private cluster
// under .data/test-postgres that the harness starts itself through
// scripts/pgcluster.sh (the same script `make run` uses). The embedded
// migrations are applied once into a template database named after a hash of
// the migration files, so a changed migration gets a fresh template, and:
//
//   - NewDB gives a test its own database cloned from the template, for tests
//     that must commit (HTTP end to end, River workers, concurrency);
//   - Tx gives a test a transaction on a per-process shared database that is
//     rolled back when the test ends.
package dbtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/database"
	"github.com/perkshq/perks/migrations"
)

const (
	defaultPort    = "54329"
	defaultDataDir = ".data/test-postgres"
	dbPrefix       = "perks_t_"
	staleAfter     = 2 * time.Hour
)

var (
	clusterOnce sync.Once
	clusterURL  string
	clusterErr  error

	templateOnce sync.Once
	templateName string
	templateErr  error

	sharedOnce sync.Once
	sharedDB   *database.DB
	sharedErr  error
)

// RepoRoot finds the directory holding go.mod, walking up from the working
// directory (go test runs each package in its own directory).
func RepoRoot() (string, error) {
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
			return "", fmt.Errorf("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// AdminURL returns a URL to the cluster's `postgres` database, starting the
// private cluster first when TEST_DATABASE_URL is unset.
func AdminURL(t testing.TB) string {
	t.Helper()
	clusterOnce.Do(func() { clusterURL, clusterErr = startCluster() })
	require.NoError(t, clusterErr, "test PostgreSQL")
	return clusterURL
}

func startCluster() (string, error) {
	raw := os.Getenv("TEST_DATABASE_URL")
	if raw == "" {
		root, err := RepoRoot()
		if err != nil {
			return "", err
		}
		dataDir := filepath.Join(root, defaultDataDir)
		cmd := exec.Command(filepath.Join(root, "scripts", "pgcluster.sh"), "start", dataDir, defaultPort)
		cmd.Stderr = os.Stderr
		if out, err := cmd.Output(); err != nil {
			return "", fmt.Errorf("start test cluster (%s): %w\n%s", dataDir, err, out)
		}
		out, err := exec.Command(filepath.Join(root, "scripts", "pgcluster.sh"), "url", dataDir, defaultPort).Output()
		if err != nil {
			return "", fmt.Errorf("test cluster url: %w", err)
		}
		raw = strings.TrimSpace(string(out))
	}
	return withDatabase(raw, "postgres")
}

func withDatabase(raw, name string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("parse database url: %w", err)
	}
	u.Path = "/" + name
	return u.String(), nil
}

// migrationsHash names the template after the migration files' contents.
func migrationsHash() (string, error) {
	h := sha256.New()
	var names []string
	err := fs.WalkDir(migrations.Files(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".sql") {
			names = append(names, p)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	sort.Strings(names)
	for _, n := range names {
		b, err := fs.ReadFile(migrations.Files(), n)
		if err != nil {
			return "", err
		}
		h.Write([]byte(n))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

func adminExec(ctx context.Context, adminURL string, fn func(conn *pgx.Conn) error) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("connect admin: %w", err)
	}
	defer conn.Close(context.Background())
	return fn(conn)
}

// Template returns the name of the migrated template database, building it
// once per cluster (serialised across test processes by an advisory lock).
func Template(t testing.TB) string {
	t.Helper()
	admin := AdminURL(t)
	templateOnce.Do(func() { templateName, templateErr = buildTemplate(admin) })
	require.NoError(t, templateErr, "test template database")
	return templateName
}

func buildTemplate(admin string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sum, err := migrationsHash()
	if err != nil {
		return "", err
	}
	name := "perks_tpl_" + sum
	err = adminExec(ctx, admin, func(conn *pgx.Conn) error {
		if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock(74829)"); err != nil {
			return err
		}
		defer conn.Exec(context.Background(), "SELECT pg_advisory_unlock(74829)") //nolint:errcheck
		dropStale(ctx, conn)
		var exists bool
		if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
			return err
		}
		if exists {
			return nil
		}
		building := name + "_building"
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+building+" WITH (FORCE)"); err != nil {
			return err
		}
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+building); err != nil {
			return err
		}
		u, err := withDatabase(admin, building)
		if err != nil {
			return err
		}
		db, err := database.Open(ctx, u, 4)
		if err != nil {
			return err
		}
		err = database.Migrate(ctx, db.Bun, slog.New(slog.DiscardHandler))
		db.Close()
		if err != nil {
			return fmt.Errorf("migrate template: %w", err)
		}
		if _, err := conn.Exec(ctx, "ALTER DATABASE "+building+" RENAME TO "+name); err != nil {
			return err
		}
		_, err = conn.Exec(ctx, "ALTER DATABASE "+name+" WITH IS_TEMPLATE true")
		return err
	})
	return name, err
}

// dropStale removes databases left behind by killed test runs. Test database
// names carry their creation time.
func dropStale(ctx context.Context, conn *pgx.Conn) {
	rows, err := conn.Query(ctx, "SELECT datname FROM pg_database WHERE datname LIKE $1", dbPrefix+"%")
	if err != nil {
		return
	}
	names, _ := pgx.CollectRows(rows, pgx.RowTo[string])
	for _, n := range names {
		parts := strings.Split(strings.TrimPrefix(n, dbPrefix), "_")
		sec, err := strconv.ParseInt(parts[0], 10, 64)
		if err != nil || time.Since(time.Unix(sec, 0)) < staleAfter {
			continue
		}
		_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{n}.Sanitize()+" WITH (FORCE)")
	}
}

func newName() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s%d_%s", dbPrefix, time.Now().Unix(), hex.EncodeToString(b))
}

// createDB clones the template and returns the new database's URL.
func createDB(ctx context.Context, t testing.TB) (string, string) {
	t.Helper()
	admin := AdminURL(t)
	tpl := Template(t)
	name := newName()
	err := adminExec(ctx, admin, func(conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, "CREATE DATABASE "+name+" TEMPLATE "+tpl+" STRATEGY FILE_COPY")
		return err
	})
	require.NoError(t, err, "create test database")
	u, err := withDatabase(admin, name)
	require.NoError(t, err)
	return name, u
}

// NewDB returns a database of the test's own, migrated, dropped when the test
// ends. Use it when the code under test must commit.
func NewDB(t testing.TB) *database.DB {
	t.Helper()
	db, _ := NewDBWithURL(t)
	return db
}

// NewDBWithURL is NewDB that also returns the database URL, for tests that
// start a whole server or a second process on it.
func NewDBWithURL(t testing.TB) (*database.DB, string) {
	t.Helper()
	ctx := context.Background()
	name, u := createDB(ctx, t)
	db, err := database.OpenWith(ctx, u, database.Options{MaxConns: 40, Counter: &database.StatementCounter{}})
	require.NoError(t, err)
	t.Cleanup(func() {
		db.Close()
		_ = adminExec(context.Background(), AdminURL(t), func(conn *pgx.Conn) error {
			_, err := conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			return err
		})
	})
	return db, u
}

// Shared returns a per-process database for tests that only need rolled-back
// transactions (see Tx). It is cleaned up as stale by a later run.
func Shared(t testing.TB) *database.DB {
	t.Helper()
	sharedOnce.Do(func() {
		ctx := context.Background()
		_, u := createDB(ctx, t)
		sharedDB, sharedErr = database.Open(ctx, u, 20)
	})
	require.NoError(t, sharedErr)
	return sharedDB
}

// Tx begins a transaction on the shared database and rolls it back when the
// test ends, so tests see none of each other's rows.
func Tx(t testing.TB) bun.Tx {
	t.Helper()
	tx, err := Shared(t).Bun.BeginTx(context.Background(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tx.Rollback() })
	return tx
}
