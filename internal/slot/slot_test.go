package slot_test

import (
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/slot"
)

func TestShare(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		total int64
		n     int
		want  []int64
	}{
		{0, 4, []int64{0, 0, 0, 0}},
		{3, 4, []int64{1, 1, 1, 0}},
		{13, 4, []int64{4, 3, 3, 3}},
		{100, 32, nil},
	} {
		var sum int64
		for i := range c.n {
			s := slot.Share(c.total, i, c.n)
			if c.want != nil {
				require.Equal(t, c.want[i], s, "share %d of %d over %d", i, c.total, c.n)
			}
			require.LessOrEqual(t, s, slot.Share(c.total+1, i, c.n), "shares keep their order")
			sum += s
		}
		require.Equal(t, c.total, sum, "the shares add up to the total")
	}
}

func TestOf(t *testing.T) {
	t.Parallel()
	seen := map[int]bool{}
	for range 200 {
		id := uuid.New()
		s := slot.Of(id, 4)
		require.Equal(t, s, slot.Of(id, 4), "one user, one slot")
		require.True(t, s >= 0 && s < 4)
		seen[s] = true
	}
	require.Len(t, seen, 4, "users spread over every slot")
}
