package idempotency_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/dbtest"
	"github.com/perkshq/perks/internal/idempotency"
)

// txBundle is a rolled-back transaction with a partner of its own. Its
// clock is in the year 2000, so records it writes are the only expired ones
// Prune can see at that time (other tests' records are from today).
type txBundle struct {
	ctx     context.Context
	tx      bun.Tx
	partner uuid.UUID
	now     time.Time
}

func setupTx(t *testing.T) *txBundle {
	t.Helper()
	ctx := context.Background()
	tx := dbtest.Tx(t)
	slug := "idtx-" + strings.ReplaceAll(uuid.NewString(), "-", "")[:20]
	var id uuid.UUID
	require.NoError(t, tx.NewRaw("INSERT INTO partners (slug, name, display_name) VALUES (?, ?, ?) RETURNING id", slug, slug, slug).Scan(ctx, &id))
	return &txBundle{ctx: ctx, tx: tx, partner: id, now: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (b *txBundle) claim(fp string) *idempotency.Claim {
	return idempotency.BeginTx(b.tx, b.partner, idempotency.Fingerprint([]byte(fp)), b.now)
}

func (b *txBundle) keys(t *testing.T) []string {
	t.Helper()
	var keys []string
	require.NoError(t, b.tx.NewRaw("SELECT key FROM idempotency_keys WHERE partner_id = ? ORDER BY key", b.partner).Scan(b.ctx, &keys))
	return keys
}

func TestValidateKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		key string
		ok  bool
	}{
		{"a", true},
		{"order-42_retry.1:~!", true},
		{strings.Repeat("k", idempotency.MaxKeyLen), true},
		{"", false},
		{strings.Repeat("k", idempotency.MaxKeyLen+1), false},
		{"has space", false},
		{"tab\t", false},
		{"nul\x00", false},
		{"del\x7f", false},
		{"café", false},
	}
	for _, tt := range tests {
		err := idempotency.ValidateKey("idempotencyKey", tt.key)
		if tt.ok {
			require.NoError(t, err, "%q", tt.key)
			continue
		}
		require.True(t, apperr.Is(err, apperr.CodeIdempotencyKeyInvalid), "%q: %v", tt.key, err)
		require.Equal(t, "idempotencyKey", apperr.As(err).Field)
		if tt.key != "" {
			require.NotContains(t, err.Error(), tt.key, "the key is not echoed")
		}
	}
}

func TestFingerprintFramesItsParts(t *testing.T) {
	t.Parallel()
	require.Equal(t, idempotency.Fingerprint([]byte("ab"), []byte("c")), idempotency.Fingerprint([]byte("ab"), []byte("c")))
	require.NotEqual(t, idempotency.Fingerprint([]byte("ab"), []byte("c")), idempotency.Fingerprint([]byte("a"), []byte("bc")))
}

func TestClaimTx(t *testing.T) {
	t.Parallel()

	t.Run("a completed key replays its response to the same request only", func(t *testing.T) {
		t.Parallel()
		b := setupTx(t)
		c := b.claim("req")
		stored, err := c.Key(b.ctx, "k1")
		require.NoError(t, err)
		require.Nil(t, stored, "a new key")
		require.True(t, c.Claimed())
		stored, err = c.Complete(b.ctx, 201, []byte(`{"ok":true}`), nil)
		require.NoError(t, err)
		require.Nil(t, stored)

		stored, err = b.claim("req").Key(b.ctx, "k1")
		require.NoError(t, err)
		require.Equal(t, &idempotency.Stored{Status: 201, Body: []byte(`{"ok":true}`)}, stored)

		_, err = b.claim("other").Key(b.ctx, "k1")
		require.True(t, apperr.Is(err, apperr.CodeIdempotencyKeyReused), "%v", err)
	})

	t.Run("a key without a response is in progress", func(t *testing.T) {
		t.Parallel()
		b := setupTx(t)
		_, err := b.claim("req").Key(b.ctx, "k")
		require.NoError(t, err)
		_, err = b.claim("req").Key(b.ctx, "k")
		require.True(t, apperr.Is(err, apperr.CodeIdempotencyInProgress), "%v", err)
		require.Equal(t, 1, apperr.As(err).RetryAfterSeconds)
	})

	t.Run("an expired key is claimed afresh", func(t *testing.T) {
		t.Parallel()
		b := setupTx(t)
		c := b.claim("req")
		_, err := c.Key(b.ctx, "k")
		require.NoError(t, err)
		_, err = c.Complete(b.ctx, 200, []byte("old"), nil)
		require.NoError(t, err)
		later := idempotency.BeginTx(b.tx, b.partner, idempotency.Fingerprint([]byte("other")), b.now.Add(idempotency.Retention+time.Second))
		stored, err := later.Key(b.ctx, "k")
		require.NoError(t, err)
		require.Nil(t, stored, "past Retention the key is free, even for another request")
	})

	t.Run("deferred keys are written with the response; a used one replays", func(t *testing.T) {
		t.Parallel()
		b := setupTx(t)
		c := b.claim("req")
		c.Defer("ref:1")
		c.Defer("ref:2")
		require.True(t, c.Claimed())
		user := uuid.New()
		stored, err := c.Complete(b.ctx, 201, []byte("first"), &user)
		require.NoError(t, err)
		require.Nil(t, stored)
		require.Equal(t, []string{"ref:1", "ref:2"}, b.keys(t))

		again := b.claim("req")
		again.Defer("ref:2")
		prior, err := again.Prior(b.ctx, b.tx)
		require.NoError(t, err)
		require.Equal(t, "first", string(prior.Body), "Prior finds the earlier success")
		sp, err := b.tx.BeginTx(b.ctx, nil)
		require.NoError(t, err)
		defer func() { _ = sp.Rollback() }()
		again = idempotency.BeginTx(sp, b.partner, idempotency.Fingerprint([]byte("req")), b.now)
		again.Defer("ref:2")
		stored, err = again.Complete(b.ctx, 201, []byte("second"), nil)
		require.NoError(t, err)
		require.Equal(t, "first", string(stored.Body), "the caller rolls back and replays the first answer")

		other := idempotency.BeginTx(sp, b.partner, idempotency.Fingerprint([]byte("other")), b.now)
		other.Defer("ref:1")
		_, err = other.Complete(b.ctx, 201, []byte("third"), nil)
		require.True(t, apperr.Is(err, apperr.CodeIdempotencyKeyReused), "%v", err)
	})

	t.Run("release forgets the keys so a retry runs again", func(t *testing.T) {
		t.Parallel()
		b := setupTx(t)
		c := b.claim("req")
		_, err := c.Key(b.ctx, "k")
		require.NoError(t, err)
		c.Defer("d")
		require.NoError(t, c.Release(b.ctx))
		require.False(t, c.Claimed())
		require.Empty(t, b.keys(t))
		stored, err := b.claim("req").Key(b.ctx, "k")
		require.NoError(t, err)
		require.Nil(t, stored)
	})
}

// TestPrune deletes expired records only.
func TestPrune(t *testing.T) {
	t.Parallel()
	b := setupTx(t)
	for i, key := range []string{"old-1", "old-2"} {
		c := idempotency.BeginTx(b.tx, b.partner, idempotency.Fingerprint([]byte(key)), b.now.Add(time.Duration(i)*time.Hour))
		_, err := c.Key(b.ctx, key)
		require.NoError(t, err)
	}
	fresh := idempotency.BeginTx(b.tx, b.partner, idempotency.Fingerprint([]byte("new")), b.now.Add(idempotency.Retention))
	_, err := fresh.Key(b.ctx, "new")
	require.NoError(t, err)

	// old-1 expires at now+Retention, old-2 an hour later, new at now+2*Retention.
	n, err := idempotency.Prune(b.ctx, b.tx, b.now.Add(idempotency.Retention+time.Minute))
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
	require.Equal(t, []string{"new", "old-2"}, b.keys(t))

	n, err = idempotency.Prune(b.ctx, b.tx, b.now.Add(idempotency.Retention))
	require.NoError(t, err)
	require.Zero(t, n, "a record expiring exactly now is kept")
}
