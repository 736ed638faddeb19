package ratelimit_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/perkshq/perks/internal/dbtest"
	"github.com/perkshq/perks/internal/ratelimit"
)

type sharedBundle struct {
	ctx     context.Context
	tx      bun.Tx
	partner uuid.UUID
	now     *time.Time
	// replica returns a limiter as another replica would have: its own
	// pockets, the same database and clock.
	replica func() *ratelimit.Shared
}

func setupShared(t *testing.T) *sharedBundle {
	t.Helper()
	ctx := context.Background()
	tx := dbtest.Tx(t)
	var id uuid.UUID
	slug := "rl-" + uuid.NewString()[:8]
	require.NoError(t, tx.NewRaw("INSERT INTO partners (slug, name, display_name) VALUES (?, ?, ?) RETURNING id", slug, slug, slug).Scan(ctx, &id))
	now := time.Unix(1_790_000_000, 0)
	b := &sharedBundle{ctx: ctx, tx: tx, partner: id, now: &now}
	clock := func() time.Time { return *b.now }
	b.replica = func() *ratelimit.Shared {
		return &ratelimit.Shared{DB: tx, Now: clock, Local: &ratelimit.Limiter{Now: clock}}
	}
	return b
}

// TestSharedLeases: replicas lease a fiftieth of a large bucket at a time
// and never admit more in total than the bucket holds; a lease not spent
// within LeaseTTL is dropped, not spent on top of the refill.
func TestSharedLeases(t *testing.T) {
	t.Parallel()
	b := setupShared(t)
	lim := ratelimit.Limit{PerMinute: 600, Burst: 200} // 10 tokens/s
	require.Equal(t, 4, ratelimit.Lease(lim))
	r1, r2, r3 := b.replica(), b.replica(), b.replica()
	allowed := 0
	for i := 0; i < 300; i++ {
		if []*ratelimit.Shared{r1, r2, r3}[i%3].Allow(b.ctx, b.partner, "partner", lim).Allowed {
			allowed++
		}
	}
	require.Equal(t, 200, allowed, "three replicas share one bucket of 200")

	// r1 leases 4 tokens after 1 s (10 refilled) and spends one; 2 s later
	// its 3 leftovers are gone, and the bucket holds 6 + 20 = 26.
	*b.now = b.now.Add(time.Second)
	require.True(t, r1.Allow(b.ctx, b.partner, "partner", lim).Allowed)
	*b.now = b.now.Add(2 * time.Second)
	allowed = 0
	for i := 0; i < 100; i++ {
		if []*ratelimit.Shared{r1, r2}[i%2].Allow(b.ctx, b.partner, "partner", lim).Allowed {
			allowed++
		}
	}
	require.Equal(t, 26, allowed)
}

// TestSharedSmallBucketExact: a bucket of at most 50 leases one token per
// request, so the RateLimit-* figures are exact across replicas; a
// refusal waits for the next token; scopes are separate buckets.
func TestSharedSmallBucketExact(t *testing.T) {
	t.Parallel()
	b := setupShared(t)
	lim := ratelimit.Limit{PerMinute: 60, Burst: 3}
	r1, r2 := b.replica(), b.replica()
	for i, want := range []int{2, 1, 0} {
		res := []*ratelimit.Shared{r1, r2}[i%2].Allow(b.ctx, b.partner, "partner", lim)
		require.True(t, res.Allowed)
		require.Equal(t, 3, res.Limit)
		require.Equal(t, want, res.Remaining)
	}
	for _, r := range []*ratelimit.Shared{r1, r2} {
		res := r.Allow(b.ctx, b.partner, "partner", lim)
		require.False(t, res.Allowed)
		require.Equal(t, time.Second, res.RetryAfter)
		require.Equal(t, 3*time.Second, res.Reset)
	}
	require.True(t, r1.Allow(b.ctx, b.partner, "consumer", lim).Allowed, "consumers have their own bucket")
	*b.now = b.now.Add(time.Second)
	require.True(t, r2.Allow(b.ctx, b.partner, "partner", lim).Allowed, "one token refilled")
	require.False(t, r1.Allow(b.ctx, b.partner, "partner", lim).Allowed)
	require.True(t, r1.Allow(b.ctx, b.partner, "partner", ratelimit.Limit{}).Allowed, "zero is unlimited")
}

// TestSharedFallsBackPerReplica: when the database fails, the replica
// limits with its own bucket and reports the error.
func TestSharedFallsBackPerReplica(t *testing.T) {
	t.Parallel()
	b := setupShared(t)
	// A database nobody listens on: every lease fails at once.
	down := bun.NewDB(stdlib.OpenDB(pgx.ConnConfig{}), pgdialect.New())
	down.DB.Close()
	var errs []error
	r := b.replica()
	r.DB, r.OnError = down, func(err error) { errs = append(errs, err) }
	lim := ratelimit.Limit{PerMinute: 60, Burst: 2}
	require.True(t, r.Allow(b.ctx, b.partner, "partner", lim).Allowed)
	require.True(t, r.Allow(b.ctx, b.partner, "partner", lim).Allowed)
	require.False(t, r.Allow(b.ctx, b.partner, "partner", lim).Allowed, "the local bucket still limits")
	require.Len(t, errs, 3)
}
