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

// TestGiftGate: at most PerGift claims of one gift are inside at once,
// claims of other gifts are not held back, a caller whose context ends
// stops waiting, and nothing is kept for a gift nobody claims.
func TestGiftGate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("bounds one gift, not the others", func(t *testing.T) {
		t.Parallel()
		gate := &voucher.GiftGate{PerGift: 2}
		a, b := uuid.New(), uuid.New()
		var inside, most atomic.Int32
		var wg sync.WaitGroup
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				release, err := gate.Enter(ctx, a)
				require.NoError(t, err)
				n := inside.Add(1)
				for {
					m := most.Load()
					if n <= m || most.CompareAndSwap(m, n) {
						break
					}
				}
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

	t.Run("a cancelled wait", func(t *testing.T) {
		t.Parallel()
		gate := &voucher.GiftGate{PerGift: 1}
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
		var gate *voucher.GiftGate
		release, err := gate.Enter(ctx, uuid.New())
		require.NoError(t, err)
		release()
	})
}

// TestClaimEntersTheGate: Service.Claim holds the gift's place in the gate
// while its transport's transaction runs, so a claim through any transport
// waits its turn, and gives it back when run returns, failed or not.
func TestClaimEntersTheGate(t *testing.T) {
	t.Parallel()
	svc := &voucher.Service{Gate: &voucher.GiftGate{PerGift: 1}}
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
	require.False(t, ran, "a second claim of the gift waited in the gate")
	close(leave)
	require.EqualError(t, <-done, "rolled back")
	require.NoError(t, svc.Claim(context.Background(), nil, nil, gift, func(context.Context, func(context.Context, bun.Tx) (*voucher.Claimed, error)) error { return nil }))
	require.Zero(t, svc.Gate.Gifts())
}
