package report_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/dbtest"
	"github.com/perkshq/perks/internal/report"
)

// TestRequestCounter: counts made from many goroutines are flushed once
// per partner on the flush's day in the partner's time zone, read back by
// Usage with earns and active users (folded or not), and never twice; an
// id that is no partner's is dropped, a failed flush keeps its counts.
func TestRequestCounter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tx := dbtest.Tx(t)
	a, b := uuid.New(), uuid.New()
	for _, p := range []struct {
		id uuid.UUID
		tz string
	}{{a, "UTC"}, {b, "Pacific/Auckland"}} {
		_, err := tx.NewRaw(`INSERT INTO partners (id, slug, name, display_name, currency_name, timezone) VALUES (?, ?, 'P', 'P', 'points', ?)`,
			p.id, "usage-"+p.id.String()[:8], p.tz).Exec(ctx)
		require.NoError(t, err)
	}
	var c report.RequestCounter
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 100; j++ {
				c.Count(a.String())
				if j%2 == 0 {
					c.Count(b.String())
				}
			}
		}()
	}
	wg.Wait()
	c.Count("not-a-uuid")
	c.Count(uuid.NewString()) // no such partner
	// 11:00 UTC on the 29th is already the 30th in Auckland.
	now := time.Date(2026, 11, 29, 11, 0, 0, 0, time.UTC)
	n, err := c.Flush(ctx, tx, now)
	require.NoError(t, err)
	require.Equal(t, int64(800+400+1), n)
	n, err = c.Flush(ctx, tx, now)
	require.NoError(t, err)
	require.Zero(t, n, "a flush writes each count once")

	// An earn of partner a that day, folded, then more requests unfolded.
	_, err = tx.NewRaw(`INSERT INTO report_days (partner_id, day, kind, points, entries) VALUES (?, '2026-11-29', 'earn', 500, 3), (?, '2026-11-29', 'active', 2, 2)`, a, a).Exec(ctx)
	require.NoError(t, err)
	c.Count(a.String())
	_, err = c.Flush(ctx, tx, now)
	require.NoError(t, err)

	day := func(s string) time.Time { d, _ := time.Parse("2006-01-02", s); return d }
	rg := report.Range{From: day("2026-11-28"), To: day("2026-11-30")}
	ua, err := report.Usage(ctx, tx, a, rg)
	require.NoError(t, err)
	require.Equal(t, []report.UsageDay{{Day: "2026-11-28"}, {Day: "2026-11-29", Requests: 801, Earns: 3, ActiveUsers: 2}, {Day: "2026-11-30"}}, ua)
	ub, err := report.Usage(ctx, tx, b, rg)
	require.NoError(t, err)
	require.Equal(t, int64(400), ub[2].Requests, "Auckland's day")
	require.Len(t, report.UsageCharts(ua, "UTC"), 3)

	// A flush that fails puts its counts back.
	c.Count(a.String())
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = c.Flush(cctx, tx, now)
	require.Error(t, err)
	n, err = c.Flush(ctx, tx, now)
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
}

// BenchmarkRequestCounter is what counting adds to every request: one map
// read and one atomic add, from all cores at once over a few partners (the
// server's access-log middleware calls Count). Compare with the request
// path's own cost, tens of microseconds (docs/benchmarks.md).
func BenchmarkRequestCounter(b *testing.B) {
	var c report.RequestCounter
	ids := make([]string, 16)
	for i := range ids {
		ids[i] = uuid.NewString()
	}
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			c.Count(ids[i%len(ids)])
			i++
		}
	})
}

// TestServerCountsAuthenticatedRequests: the server counts each request
// that authenticated as a partner (an answer of 404 too), its users'
// included, and never one refused before it authenticated.
func TestServerCountsAuthenticatedRequests(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	ctx := context.Background()
	require.Equal(t, http.StatusNotFound, env.Partner("acme", http.MethodGet, "/integrations/users/nobody", nil).StatusCode)
	require.Equal(t, http.StatusOK, env.Consumer(env.Token("acme", "counted", nil), http.MethodGet, "/me", nil).StatusCode)
	req, err := http.NewRequest(http.MethodGet, env.Server.URL+"/integrations/users/nobody", nil)
	require.NoError(t, err)
	req.Header.Set("x-partner-slug", "acme")
	req.Header.Set("x-signature", "t=1,v1=00")
	require.Equal(t, http.StatusUnauthorized, env.Do(req).StatusCode)
	_, err = env.App.Usage.Flush(ctx, env.DB.Bun, env.Now())
	require.NoError(t, err)
	today := report.Today(env.Now(), env.Acme.Partner.Timezone)
	days, err := report.Usage(ctx, env.DB.Bun, env.PartnerID("acme"), report.Range{From: today, To: today})
	require.NoError(t, err)
	require.Equal(t, int64(2), days[0].Requests)
}
