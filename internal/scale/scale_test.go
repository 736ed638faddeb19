package scale_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/database"
	"github.com/perkshq/perks/internal/ledger"
	"github.com/perkshq/perks/internal/webhook"
)

// installation is a primary, its standby, the binary and its secrets.
type installation struct {
	dir      string
	bin      string
	primary  *cluster
	standby  *cluster
	receiver *receiver
}

// receiver is acme's webhook endpoint: it counts deliveries by
// webhook-id, so a delivery sent twice shows.
type receiver struct {
	srv  *httptest.Server
	mu   sync.Mutex
	byID map[string]int
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{byID: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var body bytes.Buffer
		_, _ = body.ReadFrom(req.Body)
		id := req.Header.Get(webhook.HeaderID)
		r.mu.Lock()
		r.byID[id]++
		r.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) counts() (ids, dups int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range r.byID {
		ids++
		if n > 1 {
			dups++
		}
	}
	return ids, dups
}

// install builds the binary, starts the primary and a standby, migrates
// and seeds (acme's webhook endpoint points at the receiver).
func install(t *testing.T) *installation {
	t.Helper()
	dir := t.TempDir()
	in := &installation{dir: dir, receiver: newReceiver(t)}
	done := make(chan struct{})
	go func() { defer close(done); in.bin = build(t, dir) }()
	in.primary = startPrimary(t, filepath.Join(dir, "primary"))
	<-done
	require.NotEmpty(t, in.bin)
	env := perksEnv(dir, in.primary.url)
	run(t, dir, env, in.bin, "migrate")
	run(t, dir, append(env, "PERKS_DEMO_WEBHOOK_URL="+in.receiver.srv.URL), in.bin, "seed")
	in.standby = startStandby(t, in.primary, filepath.Join(dir, "standby"))
	return in
}

// TestThreeReplicasAndAStandby runs three `perks serve` behind one
// round-robin address, the standby serving the export, the user list and
// the ranking, under a mixed load: earns (a fifth of them retried, landing
// on another replica), an exporter polling the feed, user-list pages and
// ranking reads. Then: every retry answered what its original answered,
// every earn is in the ledger once and in the export once, no webhook
// was delivered twice, a rate limit held across the replicas, and the
// ledger's invariants hold.
func TestThreeReplicasAndAStandby(t *testing.T) {
	enabled(t)
	in := install(t)
	env := append(perksEnv(in.dir, in.primary.url), "PERKS_READ_DATABASE_URL="+in.standby.url)
	var replicas []*replica
	for i := range 3 {
		replicas = append(replicas, startReplica(t, in.bin, in.dir, env, "replica-"+strconv.Itoa(i+1)))
	}
	lb := balancer(t, replicas)
	ctx := context.Background()
	c := acme(lb.URL)

	// Users, created through the balancer.
	const users = 200
	for i := range users {
		body := []byte(fmt.Sprintf(`{"externalUserId":"scale-%d","email":"scale-%d@example.com"}`, i, i))
		code, _, b, err := c.send(c.request(ctx, http.MethodPost, "/integrations/users", body, "user-"+strconv.Itoa(i)), body)
		require.NoError(t, err)
		require.Contains(t, []int{http.StatusCreated, http.StatusOK}, code, "%s", b)
	}

	// The mixed load.
	var (
		earned  sync.Map // reference -> true
		retries atomic.Int64
		errs    = make(chan error, 100)
		stop    = make(chan struct{})
		wg      sync.WaitGroup
	)
	report := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				ref := fmt.Sprintf("scale-%d-%d", w, i)
				body := []byte(fmt.Sprintf(`{"externalUserId":"scale-%d","action":"purchase","points":%d,"reference":%q}`, (w*7919+i)%users, 1+i%50, ref))
				req := c.request(ctx, http.MethodPost, "/integrations/actions", body, "idem-"+ref)
				code, _, first, err := c.send(req, body)
				if err != nil || code != http.StatusCreated {
					report(fmt.Errorf("earn %s: %d %s %v", ref, code, first, err))
					return
				}
				earned.Store(ref, true)
				if i%5 == 0 { // the client's retry, byte for byte, to the next replica
					code2, _, again, err := c.send(req, body)
					if err != nil || code2 != code || !bytes.Equal(again, first) {
						report(fmt.Errorf("retry of %s answered %d %s, first %d %s (%v)", ref, code2, again, code, first, err))
						return
					}
					retries.Add(1)
				}
			}
		}()
	}
	exported := map[string]int{}
	var exportMu sync.Mutex
	cursor := ""
	pollExport := func() (more bool, err error) {
		path := "/integrations/exports/users?limit=100"
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		code, _, b, err := c.send(c.request(ctx, http.MethodGet, path, nil, ""), nil)
		if err != nil || code != http.StatusOK {
			return false, fmt.Errorf("export: %d %s %v", code, b, err)
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(make([]byte, 1<<20), 1<<24)
		for sc.Scan() {
			var line struct {
				Cursor  string `json:"cursor"`
				HasMore bool   `json:"hasMore"`
				Actions []struct {
					Reference *string `json:"reference"`
				} `json:"actions"`
			}
			if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
				return false, err
			}
			if line.Cursor != "" {
				cursor, more = line.Cursor, line.HasMore
				continue
			}
			exportMu.Lock()
			for _, a := range line.Actions {
				if a.Reference != nil {
					exported[*a.Reference]++
				}
			}
			exportMu.Unlock()
		}
		return more, sc.Err()
	}
	wg.Add(1)
	go func() { // the analyst's exporter, and the back office's reads
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := pollExport(); err != nil {
				report(err)
				return
			}
			for _, path := range []string{"/integrations/users?limit=50", "/integrations/users/scale-" + strconv.Itoa(i%users) + "/ranking"} {
				code, _, b, err := c.send(c.request(ctx, http.MethodGet, path, nil, ""), nil)
				if err != nil || code != http.StatusOK {
					report(fmt.Errorf("GET %s: %d %s %v", path, code, b, err))
					return
				}
			}
		}
	}()

	// A rate limit across the replicas: globex may make 30 calls at once
	// and one a second after that; three per-replica buckets would let 90
	// through.
	run(t, in.dir, perksEnv(in.dir, in.primary.url), in.bin, "partner", "set", "--partner", "globex", "--rate-limit", "60", "--rate-limit-burst", "30")
	g := globex(lb.URL)
	var allowed, limited int
	start := time.Now()
	for range 120 {
		code, _, b, err := g.send(g.request(ctx, http.MethodGet, "/integrations/users?limit=1", nil, ""), nil)
		require.NoError(t, err)
		switch code {
		case http.StatusOK:
			allowed++
		case http.StatusTooManyRequests:
			limited++
		default:
			t.Fatalf("globex: %d %s", code, b)
		}
	}
	elapsed := time.Since(start)

	time.Sleep(10 * time.Second)
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	t.Logf("rate limit: %d allowed, %d limited in %s (burst 30, 1/s)", allowed, limited, elapsed.Round(time.Millisecond))
	require.LessOrEqual(t, allowed, 30+int(elapsed.Seconds())+2, "the limit holds across three replicas")
	require.GreaterOrEqual(t, allowed, 25)

	var refs []string
	earned.Range(func(k, _ any) bool { refs = append(refs, k.(string)); return true })
	sort.Strings(refs)
	require.Greater(t, len(refs), 100, "the load earned")
	require.Positive(t, retries.Load())

	// Every earn is in the ledger once (retries included).
	var entries, distinct int
	rows := query(t, in.primary.url, `SELECT count(*), count(DISTINCT reference) FROM ledger_entries l JOIN partners p ON p.id = l.partner_id
		WHERE p.slug = 'acme' AND reference LIKE 'scale-%'`)
	require.True(t, rows.Next())
	require.NoError(t, rows.Scan(&entries, &distinct))
	rows.Close()
	require.Equal(t, len(refs), entries, "one ledger entry per earn, retries included")
	require.Equal(t, entries, distinct)

	// The export, read from the standby, catches up and holds every earn
	// exactly once.
	deadline := time.Now().Add(60 * time.Second)
	for {
		more, err := pollExport()
		require.NoError(t, err)
		exportMu.Lock()
		missing := 0
		for _, r := range refs {
			if exported[r] == 0 {
				missing++
			}
		}
		exportMu.Unlock()
		if missing == 0 && !more {
			break
		}
		require.True(t, time.Now().Before(deadline), "the export still lacks %d earns after a minute", missing)
		if !more {
			time.Sleep(200 * time.Millisecond)
		}
	}
	for _, r := range refs {
		require.Equal(t, 1, exported[r], "earn %s exported once", r)
	}

	// Every webhook event reached the receiver exactly once.
	var events int
	rows = query(t, in.primary.url, `SELECT count(*) FROM webhook_deliveries d JOIN partners p ON p.id = d.partner_id WHERE p.slug = 'acme'`)
	require.True(t, rows.Next())
	require.NoError(t, rows.Scan(&events))
	rows.Close()
	require.Positive(t, events)
	deadline = time.Now().Add(60 * time.Second)
	for {
		got, _ := in.receiver.counts()
		if got >= events {
			break
		}
		require.True(t, time.Now().Before(deadline), "%d of %d deliveries arrived", got, events)
		time.Sleep(200 * time.Millisecond)
	}
	got, dups := in.receiver.counts()
	require.Zero(t, dups, "no delivery sent twice (%d ids)", got)

	// The standby really served: its reads are in its statistics.
	var standbyReads int64
	rows = query(t, in.standby.url, `SELECT coalesce(sum(xact_commit), 0)::bigint FROM pg_stat_database WHERE datname = 'perks'`)
	require.True(t, rows.Next())
	require.NoError(t, rows.Scan(&standbyReads))
	rows.Close()
	require.Positive(t, standbyReads)

	db, err := database.Open(ctx, in.primary.url, 2)
	require.NoError(t, err)
	defer db.Close()
	require.NoError(t, ledger.CheckInvariants(ctx, db.Bun))
	t.Logf("%d earns (%d retried), %d exported once each, %d webhook deliveries, standby transactions %d",
		len(refs), retries.Load(), len(exported), got, standbyReads)
}
