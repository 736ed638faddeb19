// Package doctor checks a deployment the way an operator would before
// calling for help: can the database be reached, are the migrations
// applied, is the master key the one the secrets were sealed with, does
// this host's clock agree with the database's, is some process leading
// River (so jobs run), and are webhook deliveries keeping up. Every check
// that fails says what to fix. It only reads: it never records a master
// key, applies a migration or creates a development key.
package doctor

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/perkshq/perks/internal/config"
	"github.com/perkshq/perks/internal/database"
	"github.com/perkshq/perks/internal/keyring"
)

// Status of one check.
type Status string

const (
	OK   Status = "ok"
	Warn Status = "warn"
	Fail Status = "fail"
	Skip Status = "skipped"
)

// Result is one check's outcome; Fix says what to do when it is not OK.
type Result struct {
	Check  string `json:"check"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// Thresholds.
const (
	// SkewWarn and SkewFail bound the clock difference with the database.
	// Tokens get 60 s of leeway and signatures 300 s, but expiry, pending
	// points and rate limits compare this host's clock with rows the
	// database stamped: a few seconds already show.
	SkewWarn = time.Second
	SkewFail = 30 * time.Second
	// BacklogWarn and BacklogFail bound how late the oldest due webhook
	// delivery may be.
	BacklogWarn = 5 * time.Minute
	BacklogFail = time.Hour
)

// Options are what the checks read.
type Options struct {
	Config *config.Config
	// Now is this host's clock (time.Now when nil).
	Now func() time.Time
	// Open opens the database (database.Open when nil).
	Open func(ctx context.Context, url string) (*database.DB, error)
}

// Run performs every check in order; the checks that need the database
// are skipped when it cannot be reached.
func Run(ctx context.Context, o Options) []Result {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	open := o.Open
	if open == nil {
		open = func(ctx context.Context, url string) (*database.DB, error) { return database.Open(ctx, url, 2) }
	}
	cfg := o.Config
	var out []Result
	needDB := []string{"migrations", "master key", "clock", "river leader", "webhook backlog"}

	if cfg.DatabaseURL == "" {
		out = append(out, Result{Check: "database", Status: Fail, Detail: "DATABASE_URL is unset",
			Fix: "set DATABASE_URL to the server's PostgreSQL URL (the same environment as `perks serve`)"})
		return append(out, skipped(needDB)...)
	}
	octx, cancel := context.WithTimeout(ctx, 10*time.Second)
	start := time.Now()
	db, err := open(octx, cfg.DatabaseURL)
	cancel()
	if err != nil {
		out = append(out, Result{Check: "database", Status: Fail, Detail: "cannot connect: " + err.Error(),
			Fix: "check DATABASE_URL (host, port, user, password, database, sslmode), that PostgreSQL runs and accepts connections from this host"})
		return append(out, skipped(needDB)...)
	}
	defer db.Close()
	var version string
	_ = db.Bun.NewRaw("SELECT current_setting('server_version')").Scan(ctx, &version)
	out = append(out, Result{Check: "database", Status: OK,
		Detail: fmt.Sprintf("reachable (PostgreSQL %s, connected in %d ms)", version, time.Since(start).Milliseconds())})

	out = append(out, checkMigrations(ctx, db))
	out = append(out, checkMasterKey(ctx, cfg, db))
	out = append(out, checkClock(ctx, db, now))
	out = append(out, checkLeader(ctx, db))
	out = append(out, checkBacklog(ctx, db))
	return out
}

func skipped(checks []string) []Result {
	out := make([]Result, len(checks))
	for i, c := range checks {
		out[i] = Result{Check: c, Status: Skip, Detail: "needs the database"}
	}
	return out
}

// Failed reports whether any result failed.
func Failed(rs []Result) bool {
	for _, r := range rs {
		if r.Status == Fail {
			return true
		}
	}
	return false
}

func checkMigrations(ctx context.Context, db *database.DB) Result {
	r := Result{Check: "migrations"}
	ms, err := database.Statuses(ctx, db.Bun)
	if err != nil {
		r.Status, r.Detail, r.Fix = Fail, err.Error(), "run `perks migrate status` and check the database user may read bun_migrations"
		return r
	}
	if un := ms.Unapplied(); len(un) > 0 {
		r.Status = Fail
		r.Detail = fmt.Sprintf("%d of %d pending, first %s", len(un), len(ms), un[0].Name)
		r.Fix = "run `perks migrate` (or start the server with `perks serve --migrate`); /readyz answers 503 until then"
		return r
	}
	r.Status, r.Detail = OK, fmt.Sprintf("all %d applied, latest %s", len(ms), ms[len(ms)-1].Name)
	return r
}

// checkMasterKey compares this environment's master key with the
// fingerprint the database recorded, without recording one.
func checkMasterKey(ctx context.Context, cfg *config.Config, db *database.DB) Result {
	r := Result{Check: "master key"}
	var keys *keyring.Keyring
	var err error
	switch {
	case cfg.MasterKey != "":
		keys, err = keyring.Parse(cfg.MasterKey)
		if err != nil {
			r.Status, r.Detail, r.Fix = Fail, "PERKS_MASTER_KEY does not parse: "+err.Error(), "set PERKS_MASTER_KEY to base64 of 32 bytes, the key the servers use"
			return r
		}
	case !cfg.Development():
		r.Status, r.Detail, r.Fix = Fail, "PERKS_MASTER_KEY is unset in production", "set PERKS_MASTER_KEY to the key the servers use"
		return r
	default:
		path := keyring.DevKeyPath(cfg.SecretsDir)
		b, rerr := os.ReadFile(path)
		if !filepath.IsAbs(cfg.SecretsDir) || rerr != nil {
			r.Status, r.Detail = Warn, fmt.Sprintf("PERKS_MASTER_KEY is unset and no development key is at %s", path)
			r.Fix = "run from the repository (or set PERKS_SECRETS_DIR to the server's absolute secrets directory), or set PERKS_MASTER_KEY"
			return r
		}
		if keys, err = keyring.Parse(string(b)); err != nil {
			r.Status, r.Detail, r.Fix = Fail, "the development key does not parse: "+err.Error(), "restore "+path+" or set PERKS_MASTER_KEY"
			return r
		}
	}
	var stored []byte
	err = db.Bun.NewRaw("SELECT fingerprint FROM master_key_fingerprint").Scan(ctx, &stored)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		r.Status, r.Detail = Warn, "the database records no master key yet"
		r.Fix = "start the server once (it records the key), or check this is the right database"
	case err != nil:
		r.Status, r.Detail, r.Fix = Fail, "cannot read the recorded fingerprint: "+err.Error(), "apply the migrations (`perks migrate`)"
	case subtle.ConstantTimeCompare(stored, keys.Fingerprint()) != 1:
		r.Status, r.Detail = Fail, "this environment's master key is not the one the database's secrets were sealed with"
		r.Fix = "set PERKS_MASTER_KEY to the key the servers use; secrets sealed under one key never open under another"
	default:
		r.Status, r.Detail = OK, "matches the key the database recorded"
	}
	return r
}

// checkClock compares this host's clock with the database's, taking the
// midpoint of the round trip as the moment the database read its clock.
func checkClock(ctx context.Context, db *database.DB, now func() time.Time) Result {
	r := Result{Check: "clock"}
	t0 := now()
	var dbNow time.Time
	if err := db.Bun.NewRaw("SELECT clock_timestamp()").Scan(ctx, &dbNow); err != nil {
		r.Status, r.Detail, r.Fix = Fail, "cannot read the database's clock: "+err.Error(), "check the database connection"
		return r
	}
	t1 := now()
	skew := t0.Add(t1.Sub(t0) / 2).Sub(dbNow)
	abs := skew.Abs()
	r.Detail = fmt.Sprintf("this host is %s %s the database", abs.Round(time.Millisecond), map[bool]string{true: "ahead of", false: "behind"}[skew >= 0])
	switch {
	case abs > SkewFail:
		r.Status, r.Fix = Fail, "synchronise the clocks of this host and the database server (NTP: chrony or systemd-timesyncd)"
	case abs > SkewWarn:
		r.Status, r.Fix = Warn, "synchronise the clocks (NTP); expiries and rate limits drift by the skew"
	default:
		r.Status = OK
	}
	return r
}

// checkLeader looks for River's elected leader, which runs maintenance
// (scheduled jobs, retries, cleanup): without one no process runs workers.
func checkLeader(ctx context.Context, db *database.DB) Result {
	r := Result{Check: "river leader"}
	var leader string
	var expiresIn float64
	err := db.Bun.NewRaw("SELECT leader_id, extract(epoch FROM expires_at - now()) FROM river_leader WHERE name = 'default'").Scan(ctx, &leader, &expiresIn)
	switch {
	case errors.Is(err, sql.ErrNoRows) || (err == nil && expiresIn <= 0):
		r.Status, r.Detail = Fail, "no process leads River: no worker runs jobs (webhooks, bulk jobs, expiry)"
		r.Fix = "start a server with workers (`perks serve` with PERKS_WORKERS=true, or `perks serve --workers-only`)"
	case err != nil:
		r.Status, r.Detail, r.Fix = Fail, "cannot read river_leader: "+err.Error(), "apply the migrations (`perks migrate`)"
	default:
		r.Status, r.Detail = OK, fmt.Sprintf("%s leads (term renews within %.0f s)", leader, expiresIn)
	}
	return r
}

// checkBacklog measures the webhook deliveries due and not yet sent. The
// count stops at backlogCountCap so a huge backlog costs a bounded scan.
func checkBacklog(ctx context.Context, db *database.DB) Result {
	const backlogCountCap = 100_000
	r := Result{Check: "webhook backlog"}
	var n int
	if err := db.Bun.NewRaw("SELECT count(*) FROM (SELECT 1 FROM webhook_deliveries WHERE status = 'pending' AND coalesce(next_attempt_at, created_at) <= now() LIMIT ?) d",
		backlogCountCap).Scan(ctx, &n); err != nil {
		r.Status, r.Detail, r.Fix = Fail, "cannot read webhook_deliveries: "+err.Error(), "apply the migrations (`perks migrate`)"
		return r
	}
	if n == 0 {
		r.Status, r.Detail = OK, "no delivery is due"
		return r
	}
	var lateSeconds float64
	if err := db.Bun.NewRaw("SELECT extract(epoch FROM now() - min(coalesce(next_attempt_at, created_at))) FROM webhook_deliveries WHERE status = 'pending'").Scan(ctx, &lateSeconds); err != nil {
		r.Status, r.Detail, r.Fix = Fail, "cannot read webhook_deliveries: "+err.Error(), "apply the migrations (`perks migrate`)"
		return r
	}
	late := time.Duration(lateSeconds * float64(time.Second)).Round(time.Second)
	count := fmt.Sprint(n)
	if n >= backlogCountCap {
		count = fmt.Sprintf("at least %d", n)
	}
	r.Detail = fmt.Sprintf("%s deliveries due, the oldest %s late", count, late)
	fix := "check that workers run (river leader above), that PERKS_WEBHOOK_MAX_WORKERS suits the load, and the failing endpoints: `perks webhook deliveries --partner SLUG --status pending`"
	switch {
	case late > BacklogFail:
		r.Status, r.Fix = Fail, fix
	case late > BacklogWarn:
		r.Status, r.Fix = Warn, fix
	default:
		r.Status = OK
	}
	return r
}
