package export_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/earning"
	"github.com/perkshq/perks/internal/ledger"
	"github.com/perkshq/perks/internal/user"
)

type line struct {
	UserID  string           `json:"userId"`
	Profile *json.RawMessage `json:"profile"`
	Balance int64            `json:"balance"`
	Actions []struct {
		EntryID   int64 `json:"entryId"`
		Points    int64 `json:"points"`
		Breakdown *struct {
			Total int64 `json:"total"`
		} `json:"breakdown"`
	} `json:"actions"`
	Gifts []struct {
		VoucherID string `json:"voucherId"`
		SKU       string `json:"sku"`
		Status    string `json:"status"`
	} `json:"gifts"`
	Cursor  string `json:"cursor"`
	HasMore bool   `json:"hasMore"`
	Count   int    `json:"count"`
}

type profile struct {
	ExternalUserID *string `json:"externalUserId"`
	Email          *string `json:"email"`
	DisplayName    *string `json:"displayName"`
	Anonymised     bool    `json:"anonymised"`
	UpdatedAt      string  `json:"updatedAt"`
}

func fetch(t *testing.T, env *apptest.Env, slug, cursor string, limit int, headers map[string]string) (*apptest.Response, []line) {
	t.Helper()
	q := url.Values{}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	res := env.Partner(slug, http.MethodGet, "/integrations/exports/users?"+q.Encode(), nil, headers)
	if res.StatusCode != http.StatusOK {
		return res, nil
	}
	body := res.Body
	if res.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		require.NoError(t, err)
		body, err = io.ReadAll(zr)
		require.NoError(t, err)
	}
	var lines []line
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var l line
		require.NoError(t, json.Unmarshal(sc.Bytes(), &l), "%s", sc.Text())
		lines = append(lines, l)
	}
	return res, lines
}

// TestExportUnderConcurrentWriters: 8 writers earn, spend, edit and
// anonymise while a reader pages through the export 7 users at a time. The
// union of the pages is exactly the final state: every entry exactly once,
// each user's last exported profile and balance equal to the database's.
func TestExportUnderConcurrentWriters(t *testing.T) {
	t.Parallel()
	env := apptest.New(t, apptest.Options{WallClock: true})
	ctx := context.Background()
	a := env.App
	p := env.Acme.Partner
	const users = 40
	for i := 0; i < users; i++ {
		require.NoError(t, a.DB.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			u, err := a.Users.UpsertTx(ctx, tx, p.ID, fmt.Sprintf("x%d", i), user.Profile{})
			if err != nil {
				return err
			}
			// Enough for a coffee (100 points) from the start, so the
			// writers claim gifts however few earns they get to run.
			start := int64(250)
			_, err = a.Earning.EarnTx(ctx, tx, p, earning.EarnParams{UserID: u.User.ID, Code: "purchase", Points: &start})
			return err
		}))
	}

	coffee, err := a.Catalog.GiftBySKU(ctx, a.DB.Bun, p.ID, "coffee")
	require.NoError(t, err)

	// The writers run until the preconditions of the assertions hold
	// (enough entries, claimed gifts, an anonymised user, reads that
	// interleaved with the writes), never for a fixed time: how much a
	// writer gets done in a second depends on the machine's load.
	var stop atomic.Bool
	var wrote, claimed, anonymised atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(uint64(g), 7))
			for i := 0; !stop.Load(); i++ {
				ext := fmt.Sprintf("x%d", rnd.IntN(users))
				var done *atomic.Int64
				err := a.DB.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
					u, err := a.Users.Get(ctx, tx, p.ID, ext)
					if err != nil {
						return err
					}
					switch rnd.IntN(10) {
					case 0:
						done = &anonymised
						_, err = a.Users.AnonymiseTx(ctx, tx, p.ID, ext)
					case 1, 2:
						email := fmt.Sprintf("%s-%d-%d@example.com", ext, g, i)
						_, err = a.Users.UpsertTx(ctx, tx, p.ID, ext, user.Profile{Email: &email})
					case 3:
						if u.Anonymised() {
							return nil
						}
						_, err = a.Ledger.ApplyTx(ctx, tx, p.ID, ledger.Change{UserID: u.ID, Kind: ledger.KindBurn, Points: 3, Reason: "spend"})
					case 4:
						if u.Anonymised() {
							return nil
						}
						done = &claimed
						_, err = a.Vouchers.ClaimTx(ctx, tx, p, u, coffee.ID)
					default:
						if u.Anonymised() {
							return nil
						}
						pts := int64(1 + rnd.IntN(20))
						done = &wrote
						_, err = a.Earning.EarnTx(ctx, tx, p, earning.EarnParams{UserID: u.ID, Code: "purchase", Points: &pts})
					}
					// Hold the transaction open a little so commits interleave.
					time.Sleep(time.Duration(rnd.IntN(3)) * time.Millisecond)
					return err
				})
				if err != nil && !isExpected(err) {
					t.Errorf("writer %d: %v", g, err)
					return
				}
				if err == nil && done != nil {
					done.Add(1)
				}
			}
		}(g)
	}

	seenEntries := map[int64]int{}
	seenVouchers := map[string]int{}
	lastProfile := map[string]profile{}
	lastBalance := map[string]int64{}
	seenVersion := map[string]bool{}
	cursor := ""
	read := func() int {
		_, lines := fetch(t, env, "acme", cursor, 7, nil)
		require.NotEmpty(t, lines)
		tail := lines[len(lines)-1]
		require.NotEmpty(t, tail.Cursor, "the last line carries the cursor")
		for _, l := range lines[:len(lines)-1] {
			for _, e := range l.Actions {
				seenEntries[e.EntryID]++
			}
			for _, g := range l.Gifts {
				seenVouchers[g.VoucherID]++
			}
			if l.Profile != nil {
				var pr profile
				require.NoError(t, json.Unmarshal(*l.Profile, &pr))
				key := l.UserID + "@" + pr.UpdatedAt
				require.False(t, seenVersion[key], "profile version exported twice: %s", key)
				seenVersion[key] = true
				lastProfile[l.UserID] = pr
			}
			lastBalance[l.UserID] = l.Balance
		}
		cursor = tail.Cursor
		return tail.Count
	}
	// Read while the writers write, until they have earned, claimed and
	// anonymised enough for every assertion below to mean something. The
	// deadline only turns a stuck writer into a failure instead of a hang.
	deadline := time.Now().Add(2 * time.Minute)
	for reads := 0; reads < 10 || wrote.Load() < 60 || claimed.Load() < 3 || anonymised.Load() < 1; reads++ {
		if time.Now().After(deadline) {
			stop.Store(true)
			wg.Wait()
			t.Fatalf("writers stuck: %d reads, %d earns, %d claims, %d anonymised", reads, wrote.Load(), claimed.Load(), anonymised.Load())
		}
		read()
	}
	stop.Store(true)
	wg.Wait()
	env.WaitExportable()
	for i := 0; i < 1000; i++ { // catch up
		if read() == 0 {
			break
		}
	}

	var entries []ledger.Entry
	require.NoError(t, a.DB.Bun.NewSelect().Model(&entries).Where("partner_id = ?", p.ID).Scan(ctx))
	require.Greater(t, len(entries), 50, "the writers wrote")
	for _, e := range entries {
		require.Equal(t, 1, seenEntries[e.ID], "entry %d exported exactly once", e.ID)
	}
	require.Len(t, seenEntries, len(entries), "nothing exported that does not exist")
	var vouchers []string
	require.NoError(t, a.DB.Bun.NewRaw("SELECT id::text FROM vouchers WHERE partner_id = ?", p.ID).Scan(ctx, &vouchers))
	require.NotEmpty(t, vouchers, "the writers claimed gifts")
	for _, v := range vouchers {
		require.Equal(t, 1, seenVouchers[v], "voucher %s exported exactly once", v)
	}
	require.Len(t, seenVouchers, len(vouchers))

	var us []user.User
	require.NoError(t, a.DB.Bun.NewSelect().Model(&us).Where("partner_id = ?", p.ID).Scan(ctx))
	for _, u := range us {
		pr, ok := lastProfile[u.ID.String()]
		require.True(t, ok, "user %s exported", u.ID)
		require.Equal(t, u.Anonymised(), pr.Anonymised, "user %s", u.ID)
		require.Equal(t, u.Email, pr.Email)
		bal, err := a.Ledger.BalanceOf(ctx, a.DB.Bun, p.ID, u.ID)
		require.NoError(t, err)
		require.Equal(t, bal.Points, lastBalance[u.ID.String()], "user %s balance", u.ID)
	}
	require.NoError(t, ledger.CheckInvariants(ctx, a.DB.Bun))
}

func isExpected(err error) bool {
	for _, code := range []string{"INSUFFICIENT_POINTS", "CODES_EXHAUSTED", "LIMIT_REACHED", "OUT_OF_STOCK"} {
		if strings.Contains(err.Error(), code) {
			return true
		}
	}
	return false
}

// TestExportFormatsAndCursorBinding: NDJSON, gzip and CSV carry the same
// data; a cursor works only for its partner; a tampered cursor is refused.
func TestExportFormatsAndCursorBinding(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	for i := 0; i < 5; i++ {
		res := env.Partner("acme", http.MethodPost, "/integrations/users", []byte(fmt.Sprintf(`{"externalUserId":"f%d","email":"f%d@example.com","displayName":"F \"%d\", quoted"}`, i, i, i)))
		require.Equal(t, http.StatusCreated, res.StatusCode)
		res = env.Partner("acme", http.MethodPost, "/integrations/actions", []byte(fmt.Sprintf(`{"externalUserId":"f%d","action":"purchase","points":%d}`, i, 10+i)))
		require.Equal(t, http.StatusCreated, res.StatusCode)
	}
	require.Equal(t, http.StatusNoContent, env.Partner("acme", http.MethodDelete, "/integrations/users/f4", nil).StatusCode)
	env.WaitExportable()

	res, nd := fetch(t, env, "acme", "", 0, nil)
	require.Equal(t, "application/x-ndjson", res.Header.Get("Content-Type"))
	require.Len(t, nd, 6, "5 users and the cursor line")
	require.Equal(t, res.Header.Get("X-Next-Cursor"), nd[5].Cursor)
	require.False(t, nd[5].HasMore)

	gzRes, gz := fetch(t, env, "acme", "", 0, map[string]string{"Accept-Encoding": "gzip"})
	require.Equal(t, "gzip", gzRes.Header.Get("Content-Encoding"))
	require.Equal(t, len(nd), len(gz))
	for i := 0; i < 5; i++ {
		require.Equal(t, nd[i].UserID, gz[i].UserID)
	}

	csvRes := env.Partner("acme", http.MethodGet, "/integrations/exports/users", nil, map[string]string{"Accept": "text/csv"})
	require.Equal(t, http.StatusOK, csvRes.StatusCode)
	require.Contains(t, csvRes.Header.Get("Content-Type"), "text/csv")
	r := csv.NewReader(bytes.NewReader(csvRes.Body))
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	require.NoError(t, err)
	require.Len(t, recs, 7, "header, 5 users, cursor")
	header := recs[0]
	require.Equal(t, "#cursor", recs[6][0])
	col := func(name string) int {
		for i, h := range header {
			if h == name {
				return i
			}
		}
		t.Fatalf("no column %s", name)
		return -1
	}
	for i := 0; i < 5; i++ {
		row := recs[i+1]
		var pr profile
		require.NoError(t, json.Unmarshal(*nd[i].Profile, &pr))
		require.Equal(t, nd[i].UserID, row[col("userId")])
		require.Equal(t, strconv.FormatInt(nd[i].Balance, 10), row[col("balance")])
		require.Equal(t, strconv.FormatBool(pr.Anonymised), row[col("anonymised")])
		if pr.DisplayName != nil {
			require.Equal(t, *pr.DisplayName, row[col("displayName")], "quotes and commas survive")
		} else {
			require.Empty(t, row[col("displayName")])
		}
		var acts []map[string]any
		require.NoError(t, json.Unmarshal([]byte(row[col("actions")]), &acts))
		require.Len(t, acts, len(nd[i].Actions))
		if len(acts) > 0 {
			// Each earn carries the breakdown of its points.
			require.EqualValues(t, acts[0]["points"], acts[0]["breakdown"].(map[string]any)["total"])
		}
		for _, a := range nd[i].Actions {
			require.NotNil(t, a.Breakdown, "an earn's breakdown is exported")
			require.Equal(t, a.Points, a.Breakdown.Total)
		}
	}

	// Nothing changed since: the next export is empty.
	_, next := fetch(t, env, "acme", nd[5].Cursor, 0, nil)
	require.Len(t, next, 1)
	require.Zero(t, next[0].Count)

	// Another partner, a tampered cursor, a bad limit.
	res, _ = fetch(t, env, "globex", nd[5].Cursor, 0, nil)
	require.Equal(t, http.StatusBadRequest, res.StatusCode)
	require.Equal(t, "INVALID_FIELD", res.Code())
	tampered := []byte(nd[5].Cursor)
	tampered[3] ^= 1
	res, _ = fetch(t, env, "acme", string(tampered), 0, nil)
	require.Equal(t, "INVALID_FIELD", res.Code())
	res, _ = fetch(t, env, "acme", "", -1, nil)
	require.Equal(t, http.StatusOK, res.StatusCode, "limit<=0 is omitted by the helper")
	res = env.Partner("acme", http.MethodGet, "/integrations/exports/users?limit=0", nil)
	require.Equal(t, "INVALID_FIELD", res.Code())

	// Paging: 2 per page over the 5 users, then the empty tail.
	var ids []string
	cur := ""
	for i := 0; i < 10; i++ {
		_, page := fetch(t, env, "acme", cur, 2, nil)
		for _, l := range page[:len(page)-1] {
			ids = append(ids, l.UserID)
		}
		cur = page[len(page)-1].Cursor
		if !page[len(page)-1].HasMore {
			break
		}
	}
	require.Len(t, ids, 5)
	for i := range ids {
		require.Equal(t, nd[i].UserID, ids[i])
	}
}
