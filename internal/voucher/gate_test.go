package voucher_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

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
