package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/perkshq/perks/internal/auth"
	"github.com/perkshq/perks/internal/demo"
	"github.com/perkshq/perks/internal/export"
	"github.com/perkshq/perks/internal/ledger"
)

func init() {
	register(Scenario{Name: "multistore", Run: runMultistore})
	register(Scenario{Name: "export", Run: runExport})
	register(Scenario{Name: "ranking", Run: runRanking})
}

// signedRequest builds a partner request signed with v2 (method and path
// bound), so many GETs with empty bodies in one second stay distinct.
func signedRequest(ctx context.Context, b *Bench, method, path string, body []byte) *http.Request {
	req, _ := http.NewRequestWithContext(ctx, method, b.URL+path, strings.NewReader(string(body)))
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req.Header.Set("X-Partner-Slug", "acme")
	req.Header.Set("X-Signature", "t="+ts+",v2="+auth.SignV2([]byte(demo.Acme.HMACSecret), ts, method, path, body))
	if len(body) > 0 {
		req.Header.Set("Content-Type", "application/json")
	}
	return req
}

// runMultistore submits 10,000-item multistores (jobs) and waits for each
// to complete: latency from submit to completion, items per second.
func runMultistore(ctx context.Context, b *Bench) ([]Row, error) {
	if err := ensureEarnUsers(ctx, b); err != nil {
		return nil, err
	}
	const calls, items = 5, 10000
	var lat []time.Duration
	start := time.Now()
	for c := 0; c < calls; c++ {
		list := make([]map[string]any, items)
		for i := range list {
			list[i] = map[string]any{"externalUserId": "bench-" + strconv.Itoa((c*items+i)%earnUsers), "action": "purchase", "points": 3, "reference": fmt.Sprintf("ms-%d-%d-%d", time.Now().UnixNano(), c, i)}
		}
		body, _ := json.Marshal(map[string]any{"items": list})
		t0 := time.Now()
		res, err := b.Client.Do(signedRequest(ctx, b, http.MethodPost, "/integrations/actions/multistore?async=true", body))
		if err != nil {
			return nil, err
		}
		var acc struct{ JobID string }
		err = json.NewDecoder(res.Body).Decode(&acc)
		res.Body.Close()
		if err != nil || res.StatusCode != http.StatusAccepted {
			return nil, fmt.Errorf("multistore answered %d", res.StatusCode)
		}
		for {
			time.Sleep(20 * time.Millisecond)
			res, err := b.Client.Do(signedRequest(ctx, b, http.MethodGet, "/integrations/jobs/"+acc.JobID+"?limit=1", nil))
			if err != nil {
				return nil, err
			}
			var st struct {
				State        string
				Done, Failed int
			}
			_ = json.NewDecoder(res.Body).Decode(&st)
			res.Body.Close()
			if st.State == "completed" {
				if st.Failed > 0 {
					return nil, fmt.Errorf("multistore job had %d failures", st.Failed)
				}
				break
			}
		}
		lat = append(lat, time.Since(t0))
	}
	rate := float64(calls*items) / time.Since(start).Seconds()
	if err := ledger.CheckInvariants(ctx, b.DB.Bun); err != nil {
		return nil, err
	}
	copyRate, err := copyInBaseline(ctx, b, items)
	if err != nil {
		return nil, err
	}
	return []Row{
		{Scenario: "multistore", Variant: "10,000 items per call (job, submit to completion)", Clients: 1, Rate: rate, Unit: "items/s",
			P50: Percentile(lat, 0.5), P99: Percentile(lat, 0.99), Note: fmt.Sprintf("%d calls; API/COPY-in = %.2f", calls, rate/copyRate)},
		{Scenario: "multistore", Variant: "COPY-in of 10,000 entries and their lots (with indexes)", Clients: 1, Rate: copyRate, Unit: "items/s", Note: "baseline, rolled back"},
	}, nil
}

// copyInBaseline is the reference for multistore: COPY of n ledger
// entries (with every index and trigger of the table) and their lots, in
// a transaction rolled back so the invariants still hold. The best of
// three runs.
func copyInBaseline(ctx context.Context, b *Bench, n int) (float64, error) {
	p, err := b.App.Partners.BySlug(ctx, b.DB.Bun, "acme")
	if err != nil {
		return 0, err
	}
	var users []uuid.UUID
	rows, err := b.DB.Pool.Query(ctx, "SELECT id FROM users WHERE partner_id = $1 AND external_id LIKE 'bench-%' LIMIT $2", p.ID, n)
	if err != nil {
		return 0, err
	}
	for rows.Next() {
		var id uuid.UUID
		if err := rows.Scan(&id); err != nil {
			return 0, err
		}
		users = append(users, id)
	}
	if err := rows.Err(); err != nil {
		return 0, err
	}
	best := time.Duration(1<<63 - 1)
	for round := 0; round < 3; round++ {
		var ids []int64
		if err := b.DB.Pool.QueryRow(ctx, "SELECT array_agg(nextval(pg_get_serial_sequence('ledger_entries', 'id'))) FROM generate_series(1, $1)", n).Scan(&ids); err != nil {
			return 0, err
		}
		now := time.Now().UTC()
		ents := make([][]any, n)
		lots := make([][]any, n)
		for i := range ents {
			u := users[i%len(users)]
			ents[i] = []any{p.ID, ids[i], u, "earn", int64(3), int64(3), "Purchase", "purchase", fmt.Sprintf("copy-%d-%d", now.UnixNano(), i), now, now}
			lots[i] = []any{p.ID, u, ids[i], int64(3), int64(3), now, now}
		}
		t0 := time.Now()
		tx, err := b.DB.Pool.Begin(ctx)
		if err != nil {
			return 0, err
		}
		_, err = tx.CopyFrom(ctx, pgx.Identifier{"ledger_entries"}, []string{"partner_id", "id", "user_id", "kind", "points", "balance_after", "reason", "action_code", "reference", "occurred_at", "created_at"}, pgx.CopyFromRows(ents))
		if err == nil {
			_, err = tx.CopyFrom(ctx, pgx.Identifier{"point_lots"}, []string{"partner_id", "user_id", "source_entry_id", "points", "remaining", "available_at", "created_at"}, pgx.CopyFromRows(lots))
		}
		best = min(best, time.Since(t0))
		_ = tx.Rollback(ctx)
		if err != nil {
			return 0, fmt.Errorf("copy-in baseline: %w", err)
		}
	}
	return float64(n) / best.Seconds(), nil
}

func ensureEarnUsers(ctx context.Context, b *Bench) error {
	var n int
	if err := b.DB.Pool.QueryRow(ctx, "SELECT count(*) FROM users WHERE external_id LIKE 'bench-%'").Scan(&n); err != nil {
		return err
	}
	if n >= earnUsers {
		return nil
	}
	p, err := b.App.Partners.BySlug(ctx, b.DB.Bun, "acme")
	if err != nil {
		return err
	}
	rows := make([][]any, earnUsers)
	for i := range rows {
		ext := "bench-" + strconv.Itoa(i)
		rows[i] = []any{p.ID, uuid.New(), b.App.Keys.LookupHash("user:"+p.ID.String(), ext), ext}
	}
	_, err = b.DB.Pool.CopyFrom(ctx, pgx.Identifier{"users"}, []string{"partner_id", "id", "external_id_hash", "external_id"}, pgx.CopyFromRows(rows))
	return err
}

// millionUsers is how many users the export and ranking scenarios seed
// into globex: 1,000,000, or BENCH_USERS (say 200000) for quicker
// iterations; the seed of a million takes minutes on a loaded machine.
var millionUsers = func() int {
	if v, err := strconv.Atoi(os.Getenv("BENCH_USERS")); err == nil && v > 0 {
		return v
	}
	return 1_000_000
}()

var million sync.Once
var millionErr error
var millionIDs []string

// leaderboardLoad is how long the first load of globex's leaderboard took.
var leaderboardLoad time.Duration

// seedMillion gives globex a million users, each with one entry and a
// balance, loaded with COPY, and refreshes the leaderboard.
func seedMillion(ctx context.Context, b *Bench) error {
	million.Do(func() {
		fmt.Fprintf(os.Stderr, "seeding %d users...\n", millionUsers)
		t0 := time.Now()
		p, err := b.App.Partners.BySlug(ctx, b.DB.Bun, "globex")
		if err != nil {
			millionErr = err
			return
		}
		users := make([][]any, 0, millionUsers)
		bal := make([][]any, 0, millionUsers)
		ents := make([][]any, 0, millionUsers)
		now := time.Now().UTC()
		millionIDs = make([]string, millionUsers)
		for i := 0; i < millionUsers; i++ {
			id := uuid.New()
			ext := "m-" + strconv.Itoa(i)
			millionIDs[i] = ext
			pts := int64(1 + rand.IntN(100000))
			users = append(users, []any{p.ID, id, b.App.Keys.LookupHash("user:"+p.ID.String(), ext), ext, fmt.Sprintf("user%d@example.com", i), "User " + strconv.Itoa(i), "SG"})
			bal = append(bal, []any{p.ID, id, pts, pts})
			ents = append(ents, []any{p.ID, id, "earn", pts, pts, "Purchase", "purchase", now})
		}
		if _, millionErr = b.DB.Pool.CopyFrom(ctx, pgx.Identifier{"users"}, []string{"partner_id", "id", "external_id_hash", "external_id", "email", "display_name", "country_code"}, pgx.CopyFromRows(users)); millionErr != nil {
			return
		}
		if _, millionErr = b.DB.Pool.CopyFrom(ctx, pgx.Identifier{"balances"}, []string{"partner_id", "user_id", "points", "lifetime_earned"}, pgx.CopyFromRows(bal)); millionErr != nil {
			return
		}
		if _, millionErr = b.DB.Pool.CopyFrom(ctx, pgx.Identifier{"ledger_entries"}, []string{"partner_id", "user_id", "kind", "points", "balance_after", "reason", "action_code", "occurred_at"}, pgx.CopyFromRows(ents)); millionErr != nil {
			return
		}
		// Every credit makes a lot (ledger.CheckInvariants runs after the load).
		if _, millionErr = b.DB.Pool.Exec(ctx, `INSERT INTO point_lots (partner_id, user_id, source_entry_id, points, remaining, available_at, created_at)
			SELECT e.partner_id, e.user_id, e.id, e.points, e.points, e.occurred_at, e.occurred_at FROM ledger_entries e WHERE e.partner_id = $1 AND e.reason = 'Purchase'
			AND NOT EXISTS (SELECT 1 FROM point_lots l WHERE l.partner_id = e.partner_id AND l.source_entry_id = e.id)`, p.ID); millionErr != nil {
			return
		}
		if _, millionErr = b.DB.Pool.Exec(ctx, "VACUUM ANALYZE users, balances, ledger_entries, point_lots"); millionErr != nil {
			return
		}
		t1 := time.Now()
		if millionErr = b.App.Ranking.Load(ctx, b.DB.Bun, p.ID); millionErr != nil {
			return
		}
		leaderboardLoad = time.Since(t1)
		// Settle the bulk load before measuring: a checkpoint so its writes
		// do not stall the runs.
		_, millionErr = b.DB.Pool.Exec(ctx, "CHECKPOINT")
		fmt.Fprintf(os.Stderr, "seeded in %s; leaderboard load took %s\n", t1.Sub(t0).Round(time.Second), leaderboardLoad.Round(time.Millisecond))
	})
	return millionErr
}

// runExport streams the whole export of a million users through the API
// and, in the same run, COPY (feed query) TO STDOUT of the same rows.
func runExport(ctx context.Context, b *Bench) ([]Row, error) {
	if err := seedMillion(ctx, b); err != nil {
		return nil, err
	}
	// Two heap figures: HeapInuse's peak, which also counts garbage not yet
	// collected (with GOGC=100 it may reach twice the live heap, and the
	// live heap here is mostly the bench's own million-user seed data), and
	// the live heap's peak as of each GC (runtime/metrics), which is what
	// the export keeps; plus the bytes allocated per exported user.
	var peak, peakLive atomic.Uint64
	live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			metrics.Read(live)
			if v := live[0].Value.Uint64(); v > peakLive.Load() {
				peakLive.Store(v)
			}
		}
	}()
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	metrics.Read(live)
	idleLive := live[0].Value.Uint64()
	peakLive.Store(idleLive)

	// The export is read uncompressed, like the COPY baselines (the Go
	// client would otherwise ask for gzip, which costs this 2-core machine
	// more CPU than the encoding); a second run with gzip follows.
	apiDur, err := exportOnce(ctx, b, false)
	if err != nil {
		return nil, err
	}
	close(stop)
	wg.Wait()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	// The replay cache accepts a signature (path and second) once.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
	gzDur, err := exportOnce(ctx, b, true)
	if err != nil {
		return nil, err
	}
	gzRate := float64(millionUsers) / gzDur.Seconds()
	apiRate := float64(millionUsers) / apiDur.Seconds()

	p, _ := b.App.Partners.BySlug(ctx, b.DB.Bun, "globex")
	conn, err := pgx.Connect(ctx, b.DBURL)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	plain1, err := plainCopyRate(ctx, conn, p.ID.String())
	if err != nil {
		return nil, err
	}

	// The same feed query under COPY, straight to a discarding writer.
	var xmin string
	if err := conn.QueryRow(ctx, "SELECT pg_snapshot_xmin(pg_current_snapshot())::text").Scan(&xmin); err != nil {
		return nil, err
	}
	q := strings.NewReplacer("$1", "'"+p.ID.String()+"'::uuid", "$2", "'0'", "$3", "'"+xmin+"'", "$4", "'00000000-0000-0000-0000-000000000000'::uuid", "$5", "'ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid").Replace(feedQueryForBench())
	t1 := time.Now()
	tag, err := conn.PgConn().CopyTo(ctx, io.Discard, "COPY ("+q+") TO STDOUT")
	if err != nil {
		return nil, fmt.Errorf("copy baseline: %w", err)
	}
	copyRate := float64(tag.RowsAffected()) / time.Since(t1).Seconds()

	// COPY of plain rows, the goal's reference: the best of a run right
	// after the API's and one at the end (a single short COPY swings by 2x
	// on the shared machine; the best is the conservative baseline).
	plain2, err := plainCopyRate(ctx, conn, p.ID.String())
	if err != nil {
		return nil, err
	}
	plainRate := max(plain1, plain2)

	return []Row{
		{Scenario: "export", Variant: fmt.Sprintf("API NDJSON, %d users, one stream", millionUsers), Rate: apiRate, Unit: "rows/s",
			Note: fmt.Sprintf("API/plain COPY = %.3f; peak heap %d MiB (idle %d MiB), live heap +%d MiB, %.0f B allocated/user (whole process); API/COPY feed query = %.2f",
				apiRate/plainRate, peak.Load()>>20, before.HeapInuse>>20, (peakLive.Load()-idleLive)>>20, float64(after.TotalAlloc-before.TotalAlloc)/float64(millionUsers), apiRate/copyRate)},
		{Scenario: "export", Variant: "API NDJSON, gzip (the Go client's default)", Rate: gzRate, Unit: "rows/s",
			Note: fmt.Sprintf("API/plain COPY = %.3f", gzRate/plainRate)},
		{Scenario: "export", Variant: "COPY (the SQL-rendered feed, export.FeedQuery) TO STDOUT", Rate: copyRate, Unit: "rows/s", Note: "the feed before the Go encoder"},
		{Scenario: "export", Variant: "COPY (SELECT * FROM users) TO STDOUT", Rate: plainRate, Unit: "rows/s", Note: fmt.Sprintf("reference: best of %.0f and %.0f rows/s", plain1, plain2)},
	}, nil
}

// plainCopyRate is the rows/s of COPY (SELECT * FROM users) TO STDOUT for
// the partner, to a discarding writer.
func plainCopyRate(ctx context.Context, conn *pgx.Conn, partnerID string) (float64, error) {
	t0 := time.Now()
	tag, err := conn.PgConn().CopyTo(ctx, io.Discard, "COPY (SELECT * FROM users WHERE partner_id = '"+partnerID+"') TO STDOUT")
	if err != nil {
		return 0, err
	}
	return float64(tag.RowsAffected()) / time.Since(t0).Seconds(), nil
}

// exportOnce reads the whole export of globex through the API, with or
// without gzip, and checks its line count.
func exportOnce(ctx context.Context, b *Bench, gzip bool) (time.Duration, error) {
	req := signedRequest(ctx, b, http.MethodGet, "/integrations/exports/users", nil)
	req.Header.Set("X-Partner-Slug", "globex")
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req.Header.Set("X-Signature", "t="+ts+",v2="+auth.SignV2([]byte(demo.Globex.HMACSecret), ts, http.MethodGet, "/integrations/exports/users", nil))
	if !gzip {
		// Set by hand, the header also stops the transport's own gzip.
		req.Header.Set("Accept-Encoding", "identity")
	}
	t0 := time.Now()
	res, err := b.Client.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("export answered %d", res.StatusCode)
	}
	if gz := res.Header.Get("Content-Encoding") == "gzip" || res.Uncompressed; gz != gzip {
		return 0, fmt.Errorf("export gzip = %t, want %t", gz, gzip)
	}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	lines := 0
	for sc.Scan() {
		lines++
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	if lines != millionUsers+1 {
		return 0, fmt.Errorf("export returned %d lines, want %d", lines, millionUsers+1)
	}
	return time.Since(t0), nil
}

// runRanking asks for random users' ranks among a million at 16 clients.
func runRanking(ctx context.Context, b *Bench) ([]Row, error) {
	if err := seedMillion(ctx, b); err != nil {
		return nil, err
	}
	secret := []byte(demo.Globex.HMACSecret)
	rate, p50, p99, err := Load(ctx, 16, b.Duration, func(ctx context.Context, c, i int) error {
		// Distinct users within any second: a v2 signature is per path and
		// second, and the replay cache accepts each once.
		path := "/integrations/users/" + millionIDs[(i*16+c)*7919%millionUsers] + "/ranking?n=5"
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.URL+path, nil)
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		req.Header.Set("X-Partner-Slug", "globex")
		req.Header.Set("X-Signature", "t="+ts+",v2="+auth.SignV2(secret, ts, http.MethodGet, path, nil))
		res, err := b.Client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("ranking answered %d", res.StatusCode)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	fresh, err := rankFreshness(ctx, b)
	if err != nil {
		return nil, err
	}
	return []Row{{Scenario: "ranking", Variant: fmt.Sprintf("GET /integrations/users/{id}/ranking?n=5, %d users", millionUsers), Clients: 16, Rate: rate, Unit: "req/s", P50: p50, P99: p99,
		Note: fmt.Sprintf("an earn shows in the rank after %s; first load %s", fresh.Round(time.Millisecond), leaderboardLoad.Round(time.Millisecond))}}, nil
}

// rankFreshness credits 200,000 points to the last seeded user of globex
// (so they move to the top; seeded users have at most 100,000) and asks
// for their rank until it shows: how long a credit takes to reach the
// leaderboard.
func rankFreshness(ctx context.Context, b *Bench) (time.Duration, error) {
	secret := []byte(demo.Globex.HMACSecret)
	do := func(method, path string, body []byte) (*http.Response, error) {
		req, _ := http.NewRequestWithContext(ctx, method, b.URL+path, strings.NewReader(string(body)))
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		req.Header.Set("X-Partner-Slug", "globex")
		req.Header.Set("X-Signature", "t="+ts+",v2="+auth.SignV2(secret, ts, method, path, body))
		req.Header.Set("Content-Type", "application/json")
		return b.Client.Do(req)
	}
	ext := millionIDs[millionUsers-1]
	t0 := time.Now()
	res, err := do(http.MethodPost, "/integrations/users/"+ext+"/adjustments", []byte(`{"points":200000,"reason":"bench"}`))
	if err != nil {
		return 0, err
	}
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		return 0, fmt.Errorf("adjustment answered %d", res.StatusCode)
	}
	for i := 0; time.Since(t0) < 30*time.Second; i++ {
		path := "/integrations/users/" + ext + "/ranking?n=" + strconv.Itoa(i%50) // distinct within a second
		res, err := do(http.MethodGet, path, nil)
		if err != nil {
			return 0, err
		}
		var v struct{ Rank *int64 }
		err = json.NewDecoder(res.Body).Decode(&v)
		res.Body.Close()
		if err != nil {
			return 0, err
		}
		if v.Rank != nil && *v.Rank == 1 {
			return time.Since(t0), nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return 0, fmt.Errorf("the earn did not reach the leaderboard within 30 s")
}

func feedQueryForBench() string { return export.FeedQuery() }
