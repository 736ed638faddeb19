package partner

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestCacheServesOnlyWhatIsSafe: the cache answers from memory only while
// its listener listens, never after a local write until a notification
// came, never stores a load that an invalidation overtook, and never
// stores errors.
func TestCacheServesOnlyWhatIsSafe(t *testing.T) {
	t.Parallel()

	type bundle struct {
		cache *Cache
		loads int
		now   time.Time
	}
	setup := func(t *testing.T, live bool) *bundle {
		t.Helper()
		b := &bundle{cache: NewCache(), now: time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)}
		b.cache.now = func() time.Time { return b.now }
		if live {
			b.cache.setLive(true)
		}
		return b
	}
	get := func(b *bundle, during func()) any {
		v, err := b.cache.get("k", func() (any, error) {
			b.loads++
			if during != nil {
				during()
			}
			return b.loads, nil
		})
		require.NoError(t, err)
		return v
	}

	t.Run("not listening reads every time", func(t *testing.T) {
		t.Parallel()
		b := setup(t, false)
		require.Equal(t, 1, get(b, nil))
		require.Equal(t, 2, get(b, nil))
	})
	t.Run("listening serves the first load", func(t *testing.T) {
		t.Parallel()
		b := setup(t, true)
		require.Equal(t, 1, get(b, nil))
		require.Equal(t, 1, get(b, nil))
		b.cache.notify()
		require.Equal(t, 2, get(b, nil))
		require.Equal(t, 2, get(b, nil))
	})
	t.Run("a load overtaken by a notification is not stored", func(t *testing.T) {
		t.Parallel()
		b := setup(t, true)
		require.Equal(t, 1, get(b, b.cache.notify))
		require.Equal(t, 2, get(b, nil))
		require.Equal(t, 2, get(b, nil))
	})
	t.Run("a local write bypasses the cache until a notification", func(t *testing.T) {
		t.Parallel()
		b := setup(t, true)
		require.Equal(t, 1, get(b, nil))
		b.cache.Invalidate()
		require.Equal(t, 2, get(b, nil))
		require.Equal(t, 3, get(b, nil), "before the write's notification, a load may read the uncommitted past")
		b.cache.notify()
		require.Equal(t, 4, get(b, nil))
		require.Equal(t, 4, get(b, nil))
	})
	t.Run("a local write whose notification never comes holds for a while", func(t *testing.T) {
		t.Parallel()
		b := setup(t, true)
		b.cache.Invalidate()
		require.Equal(t, 1, get(b, nil))
		b.now = b.now.Add(holdAfterWrite + time.Millisecond)
		require.Equal(t, 2, get(b, nil))
		require.Equal(t, 2, get(b, nil))
	})
	t.Run("a lost listener empties and bypasses", func(t *testing.T) {
		t.Parallel()
		b := setup(t, true)
		require.Equal(t, 1, get(b, nil))
		b.cache.setLive(false)
		require.Equal(t, 2, get(b, nil))
		b.cache.setLive(true)
		require.Equal(t, 3, get(b, nil))
		require.Equal(t, 3, get(b, nil))
	})
	t.Run("the epoch moves whenever the cache would empty", func(t *testing.T) {
		t.Parallel()
		b := setup(t, false)
		_, serving := b.cache.Epoch()
		require.False(t, serving, "not listening")
		b.cache.setLive(true)
		gen, serving := b.cache.Epoch()
		require.True(t, serving)
		same, _ := b.cache.Epoch()
		require.Equal(t, gen, same, "nothing happened")

		for _, change := range []struct {
			name    string
			do      func()
			serving bool
		}{
			{"a notification", b.cache.notify, true},
			{"a local write", b.cache.Invalidate, false},
			{"its notification", b.cache.notify, true},
			{"a lost listener", func() { b.cache.setLive(false) }, false},
			{"listening again", func() { b.cache.setLive(true) }, true},
		} {
			change.do()
			next, serving := b.cache.Epoch()
			require.NotEqual(t, gen, next, change.name)
			require.Equal(t, change.serving, serving, change.name)
			gen = next
		}
		var none *Cache
		_, serving = none.Epoch()
		require.False(t, serving, "no cache serves nothing")
	})
	t.Run("errors are not stored", func(t *testing.T) {
		t.Parallel()
		b := setup(t, true)
		_, err := b.cache.get("k", func() (any, error) { b.loads++; return nil, errors.New("boom") })
		require.Error(t, err)
		require.Equal(t, 2, get(b, nil))
		require.Equal(t, 2, get(b, nil))
	})
}
