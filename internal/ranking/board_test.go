package ranking

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// TestOrderMatchesSort: random score changes, drops and re-adds over 5,000
// users (blocks split and empty) leave the order-statistics list equal to
// a plain sort, with every position and competition rank right, and the
// by-hash index naming exactly the ranked users.
func TestOrderMatchesSort(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	o := newOrder()
	model := map[uuid.UUID]key{}
	ids := make([]uuid.UUID, 5000)
	for i := range ids {
		ids[i] = uuid.New()
	}
	check := func() {
		want := make([]key, 0, len(model))
		for _, k := range model {
			want = append(want, k)
		}
		slices.SortFunc(want, key.compare)
		require.Equal(t, len(want), o.len())
		require.Len(t, o.byHash, len(want))
		for _, k := range want {
			require.Equal(t, k.id, o.byHash[k.hash])
		}
		require.Equal(t, want, o.slice(0, len(want)))
		for _, i := range []int{0, len(want) / 3, len(want) - 1} {
			if i < 0 || i >= len(want) {
				continue
			}
			k := want[i]
			require.Equal(t, i, o.position(k))
			above := 0
			for _, w := range want {
				if w.score > k.score {
					above++
				}
			}
			require.Equal(t, int64(above+1), o.rank(k.score))
			require.Equal(t, want[max(i-3, 0):min(i+4, len(want))], o.slice(i-3, i+4))
		}
	}
	for round := 0; round < 20; round++ {
		for n := 0; n < 3000; n++ {
			id := ids[rng.IntN(len(ids))]
			switch r := rng.IntN(10); {
			case r == 0:
				o.drop(id)
				delete(model, id)
			default:
				score := int64(rng.IntN(200)) - 10 // ties, and some non-positive scores
				since := int64(rng.IntN(50))
				o.set(id, score, since, hashOf(id))
				if score > 0 {
					model[id] = key{score: score, since: since, id: id, hash: hashOf(id)}
				} else {
					delete(model, id)
				}
			}
		}
		check()
	}
	require.Greater(t, len(o.blocks), 1, "blocks split")

	// A list built in one sort (the first load) is the same list, and
	// takes changes the same way.
	keys := make([]key, 0, len(model))
	for _, k := range model {
		keys = append(keys, k)
	}
	built := buildOrder(keys)
	require.Equal(t, o.slice(0, o.len()), built.slice(0, built.len()))
	for _, id := range ids[:500] {
		score := int64(rng.IntN(200)) + 1
		o.set(id, score, 7, hashOf(id))
		built.set(id, score, 7, hashOf(id))
	}
	require.Equal(t, o.slice(0, o.len()), built.slice(0, built.len()))
}

// hashOf stands for a user's lookup hash prefix in tests.
func hashOf(id uuid.UUID) uint64 { return hashPrefix(id[:]) | 1 }
