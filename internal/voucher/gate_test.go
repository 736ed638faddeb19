package voucher_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/voucher"
)

// TestClaimGate: at most AtOnce claims are inside at once whatever their
// gifts, and PerGift claims of one gift; claims of other gifts are not held
// back by a gift's bound; a caller whose context ends stops waiting and
// gives its places back; nothing is kept for a gift nobody claims.
func TestClaimGate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("bounds one gift, not the others", func(t *testing.T) {
		t.Parallel()
		gate := &voucher.ClaimGate{PerGift: 2}
		a, b := uuid.New(), uuid.New()
		var inside, most atomic.Int32
		var wg sync.WaitGroup
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				release, err := gate.Enter(ctx, a)
				require.NoError(t, err)
				enter(&inside, &most)
				time.Sleep(time.Millisecond)
				inside.Add(-1)
				release()
			}()
		}
		// Gift a is full now and then; gift b still enters at once.
		release, err := gate.Enter(ctx, b)
		require.NoError(t, err)
		release()
		wg.Wait()
		require.LessOrEqual(t, most.Load(), int32(2))
		require.Equal(t, 0, gate.Gifts(), "no gift kept once nobody claims it")
	})

	t.Run("bounds the claims of every gift together", func(t *testing.T) {
		t.Parallel()
		gate := &voucher.ClaimGate{AtOnce: 3}
		var inside, most atomic.Int32
		var wg sync.WaitGroup
		for i := range 30 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				release, err := gate.Enter(ctx, uuid.New())
				require.NoError(t, err)
				enter(&inside, &most)
				time.Sleep(time.Duration(i%3) * time.Millisecond)
				inside.Add(-1)
				release()
			}()
		}
		wg.Wait()
		require.LessOrEqual(t, most.Load(), int32(3), "three at once, never more")
		require.Zero(t, gate.Inside())
	})

	t.Run("a cancelled wait for the process's place gives the gift's back", func(t *testing.T) {
		t.Parallel()
		gate := &voucher.ClaimGate{AtOnce: 1, PerGift: 1}
		a, b := uuid.New(), uuid.New()
		release, err := gate.Enter(ctx, a)
		require.NoError(t, err)
		cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		defer cancel()
		_, err = gate.Enter(cctx, b)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Equal(t, 1, gate.Gifts(), "only a's place is held")
		release()
		require.Zero(t, gate.Gifts())
		require.Zero(t, gate.Inside())
	})

	t.Run("a cancelled wait", func(t *testing.T) {
		t.Parallel()
		gate := &voucher.ClaimGate{PerGift: 1}
		g := uuid.New()
		release, err := gate.Enter(ctx, g)
		require.NoError(t, err)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err = gate.Enter(cctx, g)
		require.ErrorIs(t, err, context.Canceled)
		release()
		require.Equal(t, 0, gate.Gifts())
	})

	t.Run("no limit", func(t *testing.T) {
		t.Parallel()
		var gate *voucher.ClaimGate
		release, err := gate.Enter(ctx, uuid.New())
		require.NoError(t, err)
		release()
	})
}

// enter counts one more inside and keeps the most seen at once.
func enter(inside, most *atomic.Int32) {
	n := inside.Add(1)
	for {
		m := most.Load()
		if n <= m || most.CompareAndSwap(m, n) {
			return
		}
	}
}

// TestClaimEntersTheGate: Service.Claim holds its place in the gate
// while its transport's transaction runs, so a claim through any transport
// waits its turn, and gives it back when run returns, failed or not.
func TestClaimEntersTheGate(t *testing.T) {
	t.Parallel()
	svc := &voucher.Service{Gate: &voucher.ClaimGate{AtOnce: 1}}
	gift := uuid.New()
	inside := make(chan struct{})
	leave := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- svc.Claim(context.Background(), nil, nil, gift, func(ctx context.Context, _ func(context.Context, bun.Tx) (*voucher.Claimed, error)) error {
			close(inside)
			<-leave
			return errors.New("rolled back")
		})
	}()
	<-inside
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	ran := false
	err := svc.Claim(ctx, nil, nil, gift, func(context.Context, func(context.Context, bun.Tx) (*voucher.Claimed, error)) error {
		ran = true
		return nil
	})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.False(t, ran, "a second claim waited in the gate")
	close(leave)
	require.EqualError(t, <-done, "rolled back")
	require.NoError(t, svc.Claim(context.Background(), nil, nil, gift, func(context.Context, func(context.Context, bun.Tx) (*voucher.Claimed, error)) error { return nil }))
	require.Zero(t, svc.Gate.Inside())
}
