package ratelimit

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestTokenBucket(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_790_000_000, 0)
	l := &Limiter{Now: func() time.Time { return now }}
	lim := Limit{PerMinute: 60, Burst: 3}

	for _, want := range []int{2, 1, 0} {
		r := l.Allow("a", lim)
		require.True(t, r.Allowed)
		require.Equal(t, 3, r.Limit)
		require.Equal(t, want, r.Remaining)
	}
	r := l.Allow("a", lim)
	require.False(t, r.Allowed)
	require.Equal(t, time.Second, r.RetryAfter)
	require.Equal(t, 3*time.Second, r.Reset)
	require.True(t, l.Allow("b", lim).Allowed, "keys are independent")

	now = now.Add(1500 * time.Millisecond)
	r = l.Allow("a", lim)
	require.True(t, r.Allowed, "1.5 tokens refilled")
	require.False(t, l.Allow("a", lim).Allowed)

	now = now.Add(time.Hour)
	require.Equal(t, 2, l.Allow("a", lim).Remaining, "never more than the burst")
	require.Equal(t, 0, l.Allow("a", Limit{PerMinute: 60, Burst: 1}).Remaining, "a shrunk limit clamps the bucket")

	require.True(t, l.Allow("c", Limit{}).Allowed, "zero is unlimited")
	r = l.Allow("d", Limit{PerMinute: 120})
	require.Equal(t, 120, r.Limit, "burst defaults to a minute's worth")
}
