package bulk_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/bulk"
	"github.com/perkshq/perks/internal/dbtest"
	"github.com/perkshq/perks/internal/jobs"
	"github.com/perkshq/perks/internal/ledger"
)

// provisionMany creates users u0..u(n-1) for acme with one request each.
func provisionMany(t *testing.T, env *apptest.Env, prefix string, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		res := env.Partner("acme", http.MethodPost, "/integrations/users", []byte(fmt.Sprintf(`{"externalUserId":"%s%d","email":"%s%d@example.com","displayName":"Person %d"}`, prefix, i, prefix, i, i)))
		require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	}
}

func runJob(t *testing.T, env *apptest.Env, id string) map[string]any {
	t.Helper()
	jobID := uuid.MustParse(id)
	for {
		done, err := env.App.Bulk.ProcessChunk(context.Background(), env.DB.Bun, env.Acme.Partner.ID, jobID)
		require.NoError(t, err)
		if done {
			break
		}
	}
	res := env.Partner("acme", http.MethodGet, "/integrations/jobs/"+id+"?limit=1000", nil)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	return res.JSON(t)
}

func allResults(t *testing.T, env *apptest.Env, id string) []map[string]any {
	t.Helper()
	var out []map[string]any
	after := -1
	for {
		res := env.Partner("acme", http.MethodGet, fmt.Sprintf("/integrations/jobs/%s?limit=1000&after=%d", id, after), nil)
		require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
		var v struct {
			Results   []map[string]any
			NextAfter *int
		}
		require.NoError(t, json.Unmarshal(res.Body, &v))
		out = append(out, v.Results...)
		if v.NextAfter == nil {
			return out
		}
		after = *v.NextAfter
	}
}

// TestMultistoreTenThousand: a mixed 10,000-item call gives the right
// result for each item, keeps the invariants, and changes nothing when sent
// again.
func TestMultistoreTenThousand(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	provisionMany(t, env, "m", 200)

	type item map[string]any
	items := make([]item, 0, 10000)
	want := make([]string, 0, 10000)
	for i := 0; i < 6000; i++ { // valid, unique references
		items = append(items, item{"externalUserId": fmt.Sprintf("m%d", i%200), "action": "purchase", "points": 1 + i%50, "reference": fmt.Sprintf("ref-%d", i)})
		want = append(want, "ok")
	}
	for i := 0; i < 1000; i++ { // unknown users
		items = append(items, item{"externalUserId": fmt.Sprintf("ghost%d", i), "action": "purchase", "points": 5})
		want = append(want, "USER_NOT_FOUND")
	}
	for i := 0; i < 1000; i++ { // referral is capped at 20 per user: m7 gets 20
		items = append(items, item{"externalUserId": "m7", "action": "referral"})
		if i < 20 {
			want = append(want, "ok")
		} else {
			want = append(want, "LIFETIME_CAP_REACHED")
		}
	}
	for i := 0; i < 1000; i++ { // duplicates of earlier references: the original entry
		items = append(items, item{"externalUserId": fmt.Sprintf("m%d", i%200), "action": "purchase", "points": 1 + i%50, "reference": fmt.Sprintf("ref-%d", i)})
		want = append(want, "ok")
	}
	for i := 0; i < 1000; i++ { // malformed items
		switch i % 4 {
		case 0:
			items = append(items, item{"externalUserId": "m1"})
			want = append(want, "MISSING_FIELD")
		case 1:
			items = append(items, item{"externalUserId": "m1", "action": "purchase", "points": -3})
			want = append(want, "POINTS_OUT_OF_RANGE")
		case 2:
			items = append(items, item{"externalUserId": "m1", "action": "purchase", "points": "7"})
			want = append(want, "INVALID_FIELD")
		case 3:
			items = append(items, item{"externalUserId": "m1", "action": "nope"})
			want = append(want, "ACTION_NOT_FOUND")
		}
	}
	body, err := json.Marshal(map[string]any{"items": items})
	require.NoError(t, err)

	res := env.Partner("acme", http.MethodPost, "/integrations/actions/multistore", body)
	require.Equal(t, http.StatusAccepted, res.StatusCode, "over the sync threshold it is a job: %s", res.Body)
	job := res.JSON(t)
	require.EqualValues(t, 10000, job["total"])
	status := runJob(t, env, job["jobId"].(string))
	require.Equal(t, "completed", status["state"])
	require.EqualValues(t, 6000+20+1000, status["done"])
	require.EqualValues(t, 10000-(6000+20+1000), status["failed"])

	results := allResults(t, env, job["jobId"].(string))
	require.Len(t, results, 10000)
	entryOf := map[int]any{}
	for i, r := range results {
		require.EqualValues(t, i, r["index"])
		got := r["status"].(string)
		if got == "error" {
			got = r["code"].(string)
		}
		require.Equal(t, want[i], got, "item %d: %v", i, r)
		if i < 6000 {
			entryOf[i] = r["entryId"]
		}
		if i >= 8000 && i < 9000 {
			require.Equal(t, entryOf[i-8000], r["entryId"], "a duplicate reference returns the original entry")
		}
	}
	var entries int
	require.NoError(t, env.DB.Bun.NewRaw("SELECT count(*) FROM ledger_entries").Scan(context.Background(), &entries))
	require.Equal(t, 6020, entries)
	require.NoError(t, ledger.CheckInvariants(context.Background(), env.DB.Bun))

	// Sending the same call again changes nothing.
	before := dbtest.Snapshot(t, env.DB.Bun)
	res = env.Partner("acme", http.MethodPost, "/integrations/actions/multistore", body)
	require.Equal(t, http.StatusAccepted, res.StatusCode)
	again := runJob(t, env, res.JSON(t)["jobId"].(string))
	require.EqualValues(t, 6000+1000, again["done"], "references replay; capped and unknown still fail")
	after := dbtest.Snapshot(t, env.DB.Bun)
	for _, table := range []string{"ledger_entries", "balances", "earning_counters", "users"} {
		require.Equal(t, before[table], after[table], table)
	}

	// The job's stored items keep no user hash once processed.
	var hashes int
	require.NoError(t, env.DB.Bun.NewRaw("SELECT count(*) FROM bulk_job_items WHERE user_hash IS NOT NULL").Scan(context.Background(), &hashes))
	require.Zero(t, hashes)
}

func TestMultistoreSyncAndLimits(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	provisionMany(t, env, "s", 3)
	res := env.Partner("acme", http.MethodPost, "/integrations/actions/multistore", []byte(`{"action":"referral","externalUserIds":["s0","s1","nobody","s2"]}`))
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	var out struct {
		Total, OK, Failed int
		Results           []struct {
			Index   int
			Status  string
			EntryID *int64
			Balance *int64
			Code    *string
		}
	}
	require.NoError(t, json.Unmarshal(res.Body, &out))
	require.Equal(t, 4, out.Total)
	require.Equal(t, 3, out.OK)
	require.Equal(t, "USER_NOT_FOUND", *out.Results[2].Code)
	require.EqualValues(t, 200, *out.Results[3].Balance)

	ids := make([]string, 10001)
	for i := range ids {
		ids[i] = fmt.Sprintf(`"x%d"`, i)
	}
	before := dbtest.Snapshot(t, env.DB.Bun)
	res = env.Partner("acme", http.MethodPost, "/integrations/actions/multistore", []byte(`{"action":"referral","externalUserIds":[`+strings.Join(ids, ",")+`]}`))
	require.Equal(t, http.StatusRequestEntityTooLarge, res.StatusCode)
	require.Contains(t, res.JSON(t)["detail"], "10000")
	for _, c := range []struct{ body, code string }{
		{`{}`, "MISSING_FIELD"},
		{`{"items":[]}`, "INVALID_FIELD"},
		{`{"items":[{"externalUserId":"s0","action":"referral"}],"action":"referral"}`, "BAD_REQUEST"},
		{`{"items":"nope"}`, "INVALID_FIELD"},
	} {
		res = env.Partner("acme", http.MethodPost, "/integrations/actions/multistore", []byte(c.body))
		require.Equal(t, c.code, res.Code(), "%s: %s", c.body, res.Body)
	}
	require.Equal(t, before, dbtest.Snapshot(t, env.DB.Bun))
	require.Equal(t, "NOT_FOUND", env.Partner("globex", http.MethodGet, "/integrations/jobs/"+uuid.NewString(), nil).Code())
}

// TestMultideleteSurvivesACrash: the River worker is stopped in the middle
// of a job (its chunk rolls back); a new worker finishes it. Every user is
// anonymised exactly once and the job accounts for every item.
func TestMultideleteSurvivesACrash(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	const n = 1200
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("d%d", i)
	}
	provisionMany(t, env, "d", n)
	body, _ := json.Marshal(map[string]any{"externalUserIds": append(ids, "nobody"), "mode": "anonymise"})
	res := env.Partner("acme", http.MethodPost, "/integrations/users/multidelete", body)
	require.Equal(t, http.StatusAccepted, res.StatusCode, "%s", res.Body)
	jobID := res.JSON(t)["jobId"].(string)

	start := func() *jobs.Clients {
		workers := river.NewWorkers()
		river.AddWorker(workers, &bulk.Worker{DB: env.DB.Bun, Service: env.App.Bulk})
		c, err := jobs.New(env.DB, workers, jobs.Options{Work: true, FetchPollInterval: 20 * time.Millisecond, Log: env.App.Log})
		require.NoError(t, err)
		require.NoError(t, c.Start(context.Background()))
		return c
	}
	progress := func() (done int, state string) {
		require.NoError(t, env.DB.Bun.NewRaw("SELECT done, state FROM bulk_jobs WHERE id = ?", jobID).Scan(context.Background(), &done, &state))
		return
	}
	first := start()
	require.Eventually(t, func() bool { d, _ := progress(); return d > 0 }, 20*time.Second, 5*time.Millisecond)
	// Crash: cancel the running job mid-chunk.
	require.NoError(t, first.Work.StopAndCancel(context.Background()))
	done, state := progress()
	require.Less(t, done, n, "stopped mid-job")
	require.Equal(t, "running", state)
	require.Zero(t, done%bulk.ChunkSize, "only whole chunks are committed")

	second := start()
	t.Cleanup(func() { _ = second.Work.StopAndCancel(context.Background()) })
	require.Eventually(t, func() bool { _, s := progress(); return s == "completed" }, 60*time.Second, 20*time.Millisecond)
	var j struct {
		Done, Failed int
	}
	require.NoError(t, env.DB.Bun.NewRaw("SELECT done, failed FROM bulk_jobs WHERE id = ?", jobID).Scan(context.Background(), &j.Done, &j.Failed))
	require.Equal(t, n, j.Done)
	require.Equal(t, 1, j.Failed, "the unknown user")

	var anonymised, events int
	require.NoError(t, env.DB.Bun.NewRaw("SELECT count(*) FROM users WHERE anonymised_at IS NOT NULL").Scan(context.Background(), &anonymised))
	require.NoError(t, env.DB.Bun.NewRaw("SELECT count(*) FROM events WHERE type = 'user.anonymised'").Scan(context.Background(), &events))
	require.Equal(t, n, anonymised)
	require.Equal(t, n, events, "no user processed twice")
	var completed int
	require.NoError(t, env.DB.Bun.NewRaw("SELECT count(*) FROM events WHERE type = 'bulk_job.completed'").Scan(context.Background(), &completed))
	require.Equal(t, 1, completed)

	// Anonymised: no personal data anywhere, job arguments included.
	for _, needle := range []string{"d17@example.com", "Person 17", `"d17"`} {
		require.Empty(t, scan(t, env, needle), needle)
	}
}

// TestEraseLeavesNothing: erasing a user removes every row about them.
func TestEraseLeavesNothing(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	// A subscribed endpoint, so the user's events have deliveries and jobs.
	hook := env.Partner("acme", http.MethodPost, "/integrations/webhook-endpoints", []byte(`{"url":"http://127.0.0.1:9/hook"}`))
	require.Equal(t, http.StatusCreated, hook.StatusCode, "%s", hook.Body)
	provisionMany(t, env, "e", 2)
	for i := 0; i < 3; i++ {
		res := env.Partner("acme", http.MethodPost, "/integrations/actions", []byte(`{"externalUserId":"e0","action":"purchase","points":10}`), map[string]string{"Idempotency-Key": fmt.Sprintf("e0-%d", i)})
		require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	}
	tok := env.Token("acme", "e0", nil)
	require.Empty(t, env.GraphQL(tok, `mutation { triggerAction(code: "daily_login", idempotencyKey: "k") { balance } }`, nil).Errors)
	u, err := env.App.Users.Get(context.Background(), env.DB.Bun, env.Acme.Partner.ID, "e0")
	require.NoError(t, err)
	hash := hex.EncodeToString(u.ExternalIDHash)

	res := env.Partner("acme", http.MethodDelete, "/integrations/users/e0?mode=erase", nil)
	require.Equal(t, http.StatusNoContent, res.StatusCode, "%s", res.Body)
	for _, needle := range []string{"e0@example.com", hash} {
		require.Empty(t, scan(t, env, needle), needle)
	}
	// Perks' id of the user stays only where partners learn of the
	// erasure: the export's marker and the user.erased event.
	require.ElementsMatch(t, []string{"events (1 rows)", "user_erasures (1 rows)"}, scan(t, env, u.ID.String()))
	require.Equal(t, 1, env.Count("events", "type = 'user.erased' AND data->>'userId' = ?", u.ID.String()))
	require.Equal(t, "USER_NOT_FOUND", env.Partner("acme", http.MethodGet, "/integrations/users/e0", nil).Code())
	require.NoError(t, ledger.CheckInvariants(context.Background(), env.DB.Bun))

	// Erase by multidelete too; the user's token dies with them.
	tok1 := env.Token("acme", "e1", nil)
	require.Equal(t, http.StatusOK, env.Consumer(tok1, http.MethodGet, "/me", nil).StatusCode)
	body := []byte(`{"externalUserIds":["e1"],"mode":"erase"}`)
	res = env.Partner("acme", http.MethodPost, "/integrations/users/multidelete", body)
	require.Equal(t, http.StatusAccepted, res.StatusCode)
	status := runJob(t, env, res.JSON(t)["jobId"].(string))
	require.EqualValues(t, 1, status["done"])
	require.Empty(t, scan(t, env, "e1@example.com"))
	require.Equal(t, "TOKEN_REVOKED", env.Consumer(tok1, http.MethodGet, "/me", nil).Code())
	require.Equal(t, 2, env.Count("events", "type = 'user.erased'"))
}

// scan lists the tables whose rows mention needle in any column (text,
// jsonb and bytea as hex alike), River's job table included.
func scan(t *testing.T, env *apptest.Env, needle string) []string {
	t.Helper()
	ctx := context.Background()
	rows, err := env.DB.Pool.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`)
	require.NoError(t, err)
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	var hits []string
	for _, tbl := range tables {
		var n int
		q := fmt.Sprintf(`SELECT count(*) FROM %s t WHERE position($1 IN lower(t::text)) > 0`, pgx.Identifier{tbl}.Sanitize())
		require.NoError(t, env.DB.Pool.QueryRow(ctx, q, strings.ToLower(needle)).Scan(&n), tbl)
		if n > 0 {
			hits = append(hits, fmt.Sprintf("%s (%d rows)", tbl, n))
		}
	}
	return hits
}
