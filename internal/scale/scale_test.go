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
func install(t *testing.T, withStandby bool) *installation {
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
	if withStandby {
		in.standby = startStandby(t, in.primary, filepath.Join(dir, "standby"))
	}
	return in
}

// TestThreeReplicasAndAStandby runs three `perks serve` behind one
// round-robin address, the standby serving the export, the user list and
// the ranking, under the mixed load of startLoad, and a rate limit that
// must hold across the three.
func TestThreeReplicasAndAStandby(t *testing.T) {
	enabled(t)
	in := install(t, true)
	env := append(perksEnv(in.dir, in.primary.url), "PERKS_READ_DATABASE_URL="+in.standby.url)
	var replicas []*replica
	for i := range 3 {
		replicas = append(replicas, startReplica(t, in.bin, in.dir, env, "replica-"+strconv.Itoa(i+1)))
	}
	lb := balancer(t, replicas)
	ctx := context.Background()
	l := startLoad(t, in, acme(lb.URL))

	// globex may make 30 calls at once and one a second after that; three
	// per-replica buckets would let 90 through.
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
	t.Logf("rate limit: %d allowed, %d limited in %s (burst 30, 1/s)", allowed, limited, elapsed.Round(time.Millisecond))
	require.LessOrEqual(t, allowed, 30+int(elapsed.Seconds())+2, "the limit holds across three replicas")
	require.GreaterOrEqual(t, allowed, 25)

	l.finish(t, 10*time.Second)

	// The standby really served: its reads are in its statistics.
	var standbyReads int64
	rows := query(t, in.standby.url, `SELECT coalesce(sum(xact_commit), 0)::bigint FROM pg_stat_database WHERE datname = 'perks'`)
	require.True(t, rows.Next())
	require.NoError(t, rows.Scan(&standbyReads))
	rows.Close()
	require.Positive(t, standbyReads)
}

// load is a mixed load against an installation, as startLoad describes.
type load struct {
	in      *installation
	c       *client
	earned  sync.Map // reference -> true
	retries atomic.Int64
	errs    chan error
	stop    chan struct{}
	wg      sync.WaitGroup

	mu       sync.Mutex
	exported map[string]int // reference -> times exported
	cursor   string
}

const loadUsers = 200

// startLoad creates users, then runs until finish: earns by 8 clients (a
// fifth of them retried byte for byte, which the balancer sends to another
// replica), an exporter polling the feed, user-list pages and ranking
// reads.
func startLoad(t *testing.T, in *installation, c *client) *load {
	t.Helper()
	l := &load{in: in, c: c, errs: make(chan error, 100), stop: make(chan struct{}), exported: map[string]int{}}
	ctx := context.Background()
	for i := range loadUsers {
		body := []byte(fmt.Sprintf(`{"externalUserId":"scale-%d","email":"scale-%d@example.com"}`, i, i))
		code, _, b, err := c.send(c.request(ctx, http.MethodPost, "/integrations/users", body, "user-"+strconv.Itoa(i)), body)
		require.NoError(t, err)
		require.Contains(t, []int{http.StatusCreated, http.StatusOK}, code, "%s", b)
	}
	for w := range 8 {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; !l.stopped(); i++ {
				ref := fmt.Sprintf("scale-%d-%d", w, i)
				body := []byte(fmt.Sprintf(`{"externalUserId":"scale-%d","action":"purchase","points":%d,"reference":%q}`, (w*7919+i)%loadUsers, 1+i%50, ref))
				req := c.request(ctx, http.MethodPost, "/integrations/actions", body, "idem-"+ref)
				code, _, first, err := c.send(req, body)
				if err != nil || code != http.StatusCreated {
					l.fail(fmt.Errorf("earn %s: %d %s %v", ref, code, first, err))
					return
				}
				l.earned.Store(ref, true)
				if i%5 == 0 {
					code2, _, again, err := c.send(req, body)
					if err != nil || code2 != code || !bytes.Equal(again, first) {
						l.fail(fmt.Errorf("retry of %s answered %d %s, first %d %s (%v)", ref, code2, again, code, first, err))
						return
					}
					l.retries.Add(1)
				}
			}
		}()
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		for i := 0; !l.stopped(); i++ {
			if _, err := l.pollExport(ctx); err != nil {
				l.fail(err)
				return
			}
			for _, path := range []string{"/integrations/users?limit=50", "/integrations/users/scale-" + strconv.Itoa(i%loadUsers) + "/ranking"} {
				code, _, b, err := c.send(c.request(ctx, http.MethodGet, path, nil, ""), nil)
				if err != nil || code != http.StatusOK {
					l.fail(fmt.Errorf("GET %s: %d %s %v", path, code, b, err))
					return
				}
			}
		}
	}()
	return l
}

func (l *load) stopped() bool {
	select {
	case <-l.stop:
		return true
	default:
		return false
	}
}

func (l *load) fail(err error) {
	select {
	case l.errs <- err:
	default:
	}
}

// pollExport reads the next export page and counts its earns.
func (l *load) pollExport(ctx context.Context) (more bool, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	path := "/integrations/exports/users?limit=100"
	if l.cursor != "" {
		path += "&cursor=" + url.QueryEscape(l.cursor)
	}
	code, _, b, err := l.c.send(l.c.request(ctx, http.MethodGet, path, nil, ""), nil)
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
			l.cursor, more = line.Cursor, line.HasMore
			continue
		}
		for _, a := range line.Actions {
			if a.Reference != nil {
				l.exported[*a.Reference]++
			}
		}
	}
	return more, sc.Err()
}

// finish lets the load run for d, stops it and checks: every retry
// answered what its original answered, every earn is in the ledger once
// and in the export once, no webhook was delivered twice, and the
// ledger's invariants hold.
func (l *load) finish(t *testing.T, d time.Duration) {
	t.Helper()
	ctx := context.Background()
	time.Sleep(d)
	close(l.stop)
	l.wg.Wait()
	close(l.errs)
	for err := range l.errs {
		require.NoError(t, err)
	}
	var refs []string
	l.earned.Range(func(k, _ any) bool { refs = append(refs, k.(string)); return true })
	sort.Strings(refs)
	require.Greater(t, len(refs), 100, "the load earned")
	require.Positive(t, l.retries.Load())

	var entries, distinct int
	rows := query(t, l.in.primary.url, `SELECT count(*), count(DISTINCT reference) FROM ledger_entries l JOIN partners p ON p.id = l.partner_id
		WHERE p.slug = 'acme' AND reference LIKE 'scale-%'`)
	require.True(t, rows.Next())
	require.NoError(t, rows.Scan(&entries, &distinct))
	rows.Close()
	require.Equal(t, len(refs), entries, "one ledger entry per earn, retries included")
	require.Equal(t, entries, distinct)

	deadline := time.Now().Add(60 * time.Second)
	for {
		more, err := l.pollExport(ctx)
		require.NoError(t, err)
		missing := 0
		l.mu.Lock()
		for _, r := range refs {
			if l.exported[r] == 0 {
				missing++
			}
		}
		l.mu.Unlock()
		if missing == 0 && !more {
			break
		}
		require.True(t, time.Now().Before(deadline), "the export still lacks %d earns after a minute", missing)
		if !more {
			time.Sleep(200 * time.Millisecond)
		}
	}
	for _, r := range refs {
		require.Equal(t, 1, l.exported[r], "earn %s exported once", r)
	}

	var events int
	rows = query(t, l.in.primary.url, `SELECT count(*) FROM webhook_deliveries d JOIN partners p ON p.id = d.partner_id WHERE p.slug = 'acme'`)
	require.True(t, rows.Next())
	require.NoError(t, rows.Scan(&events))
	rows.Close()
	require.Positive(t, events)
	deadline = time.Now().Add(60 * time.Second)
	for {
		got, _ := l.in.receiver.counts()
		if got >= events {
			break
		}
		require.True(t, time.Now().Before(deadline), "%d of %d deliveries arrived", got, events)
		time.Sleep(200 * time.Millisecond)
	}
	got, dups := l.in.receiver.counts()
	require.Zero(t, dups, "no delivery sent twice (%d ids)", got)

	db, err := database.Open(ctx, l.in.primary.url, 2)
	require.NoError(t, err)
	defer db.Close()
	require.NoError(t, ledger.CheckInvariants(ctx, db.Bun))
	t.Logf("%d earns in %s (%d retried), each exported once, %d webhook deliveries, none twice", len(refs), d, l.retries.Load(), got)
}
