package bulk_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/app"
	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/bulk"
	"github.com/perkshq/perks/internal/config"
	"github.com/perkshq/perks/internal/database"
	"github.com/perkshq/perks/internal/jobs"
	"github.com/perkshq/perks/internal/keyring"
	"github.com/perkshq/perks/internal/ledger"
)

// crashChildEnv, when set to a database URL, turns the test binary into a
// replica that works River jobs on that database until it is killed.
const crashChildEnv = "PERKS_TEST_BULK_CRASH_REPLICA_DB"

// replicaConfig is the configuration of a worker replica of the test.
func replicaConfig(t *testing.T) *config.Config {
	t.Helper()
	env := map[string]string{
		"PERKS_ENV":                   config.EnvDevelopment,
		"PERKS_SECRETS_DIR":           t.TempDir(),
		"PERKS_WORKERS":               "true",
		"PERKS_WEBHOOK_ALLOW_PRIVATE": "true",
	}
	cfg, err := config.Load(func(k string) string { return env[k] })
	require.NoError(t, err)
	return cfg
}

// runCrashReplica is the child process: the production wiring (app.New and
// its River configuration) working jobs until the parent kills it with
// SIGKILL. It gives up by itself after a minute so an orphan never lingers.
func runCrashReplica(t *testing.T, url string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := database.Open(ctx, url, 10)
	require.NoError(t, err)
	defer db.Close()
	master := make([]byte, keyring.KeySize)
	_, _ = rand.Read(master)
	keys, err := keyring.New(master)
	require.NoError(t, err)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	a, err := app.New(replicaConfig(t), log, db, keys)
	require.NoError(t, err)
	_ = a.WorkOnly(ctx)
}

// TestKilledBulkJobResumesWithinTheBound is the crash of issue 11: a replica
// working a 10,000-item multistore job is killed with SIGKILL mid-job (a
// real process, so its transaction in flight is aborted by PostgreSQL and
// River's row stays `running`). Another replica with the production River
// configuration must pick the job up once RescueStuckJobsAfter has passed
// since the attempt began, not after an hour, and finish it exactly once.
//
// River's rescuer and leader election compare stored timestamps with the
// wall clock (time.Now in job_rescuer.go, now() in SQL) and take no
// injectable clock, so the test advances time for River the only way it
// can: it moves the crashed attempt's attempted_at and the dead leader's
// lease back by the durations that would have passed. With the old
// one-hour worker timeout the rescuer keeps ignoring the job and the test
// fails.
func TestKilledBulkJobResumesWithinTheBound(t *testing.T) {
	if url := os.Getenv(crashChildEnv); url != "" {
		runCrashReplica(t, url)
		return
	}
	t.Parallel()
	ctx := context.Background()
	env := apptest.New(t)
	const users, n = 200, bulk.MaxMultistoreItems
	provisionMany(t, env, "k", users)

	// No references: an item processed twice would earn twice.
	items := make([]map[string]any, n)
	want := map[string]int64{}
	for i := range items {
		ext, pts := fmt.Sprintf("k%d", i%users), int64(1+i%7)
		items[i] = map[string]any{"externalUserId": ext, "action": "purchase", "points": pts}
		want[ext] += pts
	}
	body, err := json.Marshal(map[string]any{"items": items})
	require.NoError(t, err)
	res := env.Partner("acme", http.MethodPost, "/integrations/actions/multistore", body)
	require.Equal(t, http.StatusAccepted, res.StatusCode, "%s", res.Body)
	jobID := res.JSON(t)["jobId"].(string)
	progress := func() (processed int, state string) {
		require.NoError(t, env.DB.Bun.NewRaw("SELECT done + failed, state FROM bulk_jobs WHERE id = ?", jobID).Scan(ctx, &processed, &state))
		return
	}

	// The first replica: a child process working the job.
	out := &apptest.SyncBuffer{}
	child := exec.Command(os.Args[0], "-test.run=^TestKilledBulkJobResumesWithinTheBound$", "-test.count=1")
	child.Env = append(os.Environ(), crashChildEnv+"="+env.DBURL)
	child.Stdout, child.Stderr = out, out
	require.NoError(t, child.Start())
	exited := make(chan struct{})
	go func() { _ = child.Wait(); close(exited) }()
	t.Cleanup(func() { _ = child.Process.Kill(); <-exited })

	// Kill it as soon as it has committed progress, while it works the rest.
	require.Eventually(t, func() bool {
		select {
		case <-exited:
			t.Fatalf("the replica exited by itself:\n%s", out.String())
		default:
		}
		p, _ := progress()
		return p >= bulk.ChunkSize
	}, 30*time.Second, 2*time.Millisecond, "the replica never committed a chunk:\n%s", out.String())
	require.NoError(t, child.Process.Kill()) // SIGKILL: no deferred code, no graceful stop
	<-exited
	atCrash, state := progress()
	require.Equal(t, "running", state)
	require.Less(t, atCrash, n, "killed mid-job")
	require.Zero(t, atCrash%bulk.ChunkSize, "only whole chunks are committed")
	var riverState string
	require.NoError(t, env.DB.Bun.NewRaw("SELECT state FROM river_job WHERE kind = 'bulk_job'").Scan(ctx, &riverState))
	require.Equal(t, "running", riverState, "River still believes the dead replica works the job")

	// Advance River's clock: the attempt began RescueStuckJobsAfter ago and
	// the dead replica's leadership lease ran out.
	rescueAfter := jobs.RescueStuckJobsAfter
	secs := strconv.Itoa(int(rescueAfter.Seconds()))
	_, err = env.DB.Bun.ExecContext(ctx, "UPDATE river_job SET attempted_at = now() - interval '"+secs+" seconds' WHERE kind = 'bulk_job'")
	require.NoError(t, err)
	_, err = env.DB.Bun.ExecContext(ctx, "UPDATE river_leader SET elected_at = elected_at - interval '1 minute', expires_at = now() - interval '1 second'")
	require.NoError(t, err)

	// The replica coming back: the production wiring in this process.
	logs := &apptest.SyncBuffer{}
	replica, err := app.New(replicaConfig(t), slog.New(slog.NewJSONHandler(logs, nil)), env.DB, env.App.Keys)
	require.NoError(t, err)
	started := time.Now()
	require.NoError(t, replica.Jobs.Start(ctx))
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = replica.Jobs.Stop(sctx)
		replica.StopBackground()
		if t.Failed() {
			t.Logf("killed replica's output:\n%s\nnew replica's log:\n%s", out.String(), logs.String())
		}
	})
	// In production the rescuer runs every 30 s (JobRescuerIntervalDefault),
	// so the resume may come up to that much later than here.
	const rescuerInterval = 30 * time.Second
	budget := 2*time.Minute - rescueAfter - rescuerInterval
	require.Eventually(t, func() bool { p, _ := progress(); return p > atCrash }, budget, 10*time.Millisecond,
		"the job did not resume within the two-minute bound")
	resumed := time.Since(started)
	require.Eventually(t, func() bool { _, s := progress(); return s == "completed" }, 60*time.Second, 10*time.Millisecond)
	t.Logf("killed after %d of %d items; resumed %v after the replica started (simulated %v after the attempt began), completed %v after",
		atCrash, n, resumed.Round(time.Millisecond), (rescueAfter + resumed).Round(time.Second), time.Since(started).Round(time.Millisecond))

	// Exactly once: every item earned once, balances are the sums.
	var j struct{ Done, Failed int }
	require.NoError(t, env.DB.Bun.NewRaw("SELECT done, failed FROM bulk_jobs WHERE id = ?", jobID).Scan(ctx, &j.Done, &j.Failed))
	require.Equal(t, n, j.Done)
	require.Zero(t, j.Failed)
	var entries, distinctItems, completedEvents int
	require.NoError(t, env.DB.Bun.NewRaw("SELECT count(*) FROM ledger_entries").Scan(ctx, &entries))
	require.Equal(t, n, entries, "each item earned exactly once")
	require.NoError(t, env.DB.Bun.NewRaw("SELECT count(DISTINCT entry_id) FROM bulk_job_items WHERE job_id = ? AND status = 'ok'", jobID).Scan(ctx, &distinctItems))
	require.Equal(t, n, distinctItems, "each item has its own entry")
	require.NoError(t, env.DB.Bun.NewRaw("SELECT count(*) FROM events WHERE type = 'bulk_job.completed'").Scan(ctx, &completedEvents))
	require.Equal(t, 1, completedEvents)
	for ext, pts := range want {
		u, err := env.App.Users.Get(ctx, env.DB.Bun, env.Acme.Partner.ID, ext)
		require.NoError(t, err)
		require.Equal(t, pts, env.Balance("acme", u.ID), ext)
	}
	require.NoError(t, ledger.CheckInvariants(ctx, env.DB.Bun))
}
