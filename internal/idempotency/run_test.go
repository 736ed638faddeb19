package idempotency_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/database"
	"github.com/perkshq/perks/internal/dbtest"
	"github.com/perkshq/perks/internal/idempotency"
)

// The tests commit (Run owns its transaction), so each gets a partner of its
// own in the shared database and counts only that partner's rows.

var (
	effectsOnce sync.Once
	effectsErr  error
)

type bundle struct {
	db        *database.DB
	partnerID uuid.UUID
	now       time.Time
}

func setup(t *testing.T) *bundle {
	t.Helper()
	db := dbtest.Shared(t)
	slug := "idem-" + strings.ReplaceAll(uuid.NewString(), "-", "")[:20]
	var id uuid.UUID
	require.NoError(t, db.Bun.NewRaw("INSERT INTO partners (slug, name, display_name) VALUES (?, ?, ?) RETURNING id", slug, slug, slug).
		Scan(context.Background(), &id))
	t.Cleanup(func() {
		_, _ = db.Bun.NewRaw("DELETE FROM partners WHERE id = ?", id).Exec(context.Background())
	})
	effectsOnce.Do(func() {
		_, effectsErr = db.Bun.NewRaw("CREATE TABLE IF NOT EXISTS idem_effects (partner_id uuid NOT NULL, note text NOT NULL)").Exec(context.Background())
	})
	require.NoError(t, effectsErr)
	return &bundle{db: db, partnerID: id, now: time.Now().UTC().Truncate(time.Second)}
}

// effect records one visible side effect of the work, in its transaction.
func (b *bundle) effect(ctx context.Context, tx bun.Tx, note string) error {
	_, err := tx.NewRaw("INSERT INTO idem_effects (partner_id, note) VALUES (?, ?)", b.partnerID, note).Exec(ctx)
	return err
}

func (b *bundle) effects(t *testing.T) int {
	t.Helper()
	var n int
	require.NoError(t, b.db.Bun.NewRaw("SELECT count(*) FROM idem_effects WHERE partner_id = ?", b.partnerID).Scan(context.Background(), &n))
	return n
}

func (b *bundle) req(fp string, keys, deferred []string) idempotency.Request {
	return idempotency.Request{PartnerID: b.partnerID, Fingerprint: idempotency.Fingerprint([]byte(fp)), Now: b.now, Keys: keys, Deferred: deferred}
}

// work returns a function that records an effect and answers body.
func (b *bundle) work(body string) func(ctx context.Context, op *idempotency.Op) (idempotency.Response, error) {
	return func(ctx context.Context, op *idempotency.Op) (idempotency.Response, error) {
		if err := b.effect(ctx, op.Tx, body); err != nil {
			return idempotency.Response{}, err
		}
		return idempotency.Response{Status: 201, Body: []byte(body)}, nil
	}
}

type mustCommitErr struct{}

func (mustCommitErr) Error() string    { return "counted failure" }
func (mustCommitErr) MustCommit() bool { return true }

func TestRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	modes := []struct {
		name string
		req  func(b *bundle, fp, key string) idempotency.Request
	}{
		{"up front", func(b *bundle, fp, key string) idempotency.Request { return b.req(fp, []string{key}, nil) }},
		{"deferred", func(b *bundle, fp, key string) idempotency.Request { return b.req(fp, nil, []string{key}) }},
	}
	for _, m := range modes {
		t.Run(m.name+"/retry replays byte for byte", func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			first, err := idempotency.Run(ctx, b.db.Bun, m.req(b, "A", "k"), b.work(`{"n":1}`))
			require.NoError(t, err)
			require.False(t, first.Replayed)
			again, err := idempotency.Run(ctx, b.db.Bun, m.req(b, "A", "k"), b.work(`{"n":2}`))
			require.NoError(t, err)
			require.True(t, again.Replayed)
			require.Equal(t, 201, again.Status)
			require.Equal(t, `{"n":1}`, string(again.Body))
			require.Equal(t, 1, b.effects(t))
		})
		t.Run(m.name+"/same key for another request", func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			_, err := idempotency.Run(ctx, b.db.Bun, m.req(b, "A", "k"), b.work("a"))
			require.NoError(t, err)
			_, err = idempotency.Run(ctx, b.db.Bun, m.req(b, "B", "k"), b.work("b"))
			require.Equal(t, apperr.CodeIdempotencyKeyReused, apperr.CodeOf(err))
			require.Equal(t, 1, b.effects(t))
		})
		t.Run(m.name+"/failure then retry runs again", func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			fail := func(ctx context.Context, op *idempotency.Op) (idempotency.Response, error) {
				if err := b.effect(ctx, op.Tx, "half"); err != nil {
					return idempotency.Response{}, err
				}
				return idempotency.Response{}, apperr.New(apperr.CodeUserNotFound, "no user")
			}
			_, err := idempotency.Run(ctx, b.db.Bun, m.req(b, "A", "k"), fail)
			require.Equal(t, apperr.CodeUserNotFound, apperr.CodeOf(err))
			require.Zero(t, b.effects(t), "a failure rolls back")
			res, err := idempotency.Run(ctx, b.db.Bun, m.req(b, "A", "k"), b.work("ok"))
			require.NoError(t, err)
			require.False(t, res.Replayed)
			require.Equal(t, 1, b.effects(t))
		})
		t.Run(m.name+"/must-commit failure releases the key", func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			counted := func(ctx context.Context, op *idempotency.Op) (idempotency.Response, error) {
				if err := b.effect(ctx, op.Tx, "attempt"); err != nil {
					return idempotency.Response{}, err
				}
				return idempotency.Response{}, mustCommitErr{}
			}
			_, err := idempotency.Run(ctx, b.db.Bun, m.req(b, "A", "k"), counted)
			require.ErrorIs(t, err, mustCommitErr{})
			require.Equal(t, 1, b.effects(t), "the counted attempt commits")
			res, err := idempotency.Run(ctx, b.db.Bun, m.req(b, "A", "k"), b.work("ok"))
			require.NoError(t, err)
			require.False(t, res.Replayed, "nothing was stored: the retry runs")
			require.Equal(t, 2, b.effects(t))
		})
		t.Run(m.name+"/concurrent duplicates run once", func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			const n = 6
			var wg sync.WaitGroup
			results := make([]idempotency.Result, n)
			errs := make([]error, n)
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					results[i], errs[i] = idempotency.Run(ctx, b.db.Bun, m.req(b, "A", "k"), func(ctx context.Context, op *idempotency.Op) (idempotency.Response, error) {
						time.Sleep(20 * time.Millisecond) // widen the race window (not a clock)
						return b.work("once")(ctx, op)
					})
				}()
			}
			wg.Wait()
			fresh := 0
			for i := range n {
				require.NoError(t, errs[i])
				require.Equal(t, "once", string(results[i].Body))
				if !results[i].Replayed {
					fresh++
				}
			}
			require.Equal(t, 1, fresh)
			require.Equal(t, 1, b.effects(t))
		})
	}

	t.Run("deferred key found after a failure replays the earlier success", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		_, err := idempotency.Run(ctx, b.db.Bun, b.req("A", nil, []string{"ref"}), b.work("earned"))
		require.NoError(t, err)
		// The retry fails on its own (a daily cap the first request used up).
		res, err := idempotency.Run(ctx, b.db.Bun, b.req("A", nil, []string{"ref"}), func(ctx context.Context, op *idempotency.Op) (idempotency.Response, error) {
			return idempotency.Response{}, apperr.New(apperr.CodeDailyCapReached, "cap")
		})
		require.NoError(t, err)
		require.True(t, res.Replayed)
		require.Equal(t, "earned", string(res.Body))
	})

	t.Run("keys deferred by the work", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		w := func(ctx context.Context, op *idempotency.Op) (idempotency.Response, error) {
			op.Defer("reference:o-1")
			return b.work("x")(ctx, op)
		}
		_, err := idempotency.Run(ctx, b.db.Bun, b.req("A", nil, nil), w)
		require.NoError(t, err)
		res, err := idempotency.Run(ctx, b.db.Bun, b.req("A", nil, nil), w)
		require.NoError(t, err)
		require.True(t, res.Replayed)
		require.Equal(t, 1, b.effects(t))
	})

	t.Run("Store keeps a secret out of the stored answer", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		w := func(ctx context.Context, op *idempotency.Op) (idempotency.Response, error) {
			return idempotency.Response{Status: 201, Body: []byte(`{"secret":"whsec_x"}`), Store: []byte(`{"secretNote":"shown once"}`)}, nil
		}
		first, err := idempotency.Run(ctx, b.db.Bun, b.req("A", []string{"k"}, nil), w)
		require.NoError(t, err)
		require.Contains(t, string(first.Body), "whsec_x")
		again, err := idempotency.Run(ctx, b.db.Bun, b.req("A", []string{"k"}, nil), w)
		require.NoError(t, err)
		require.True(t, again.Replayed)
		require.NotContains(t, string(again.Body), "whsec_x")
		var stored []byte
		require.NoError(t, b.db.Bun.NewRaw("SELECT response_body FROM idempotency_keys WHERE partner_id = ?", b.partnerID).Scan(ctx, &stored))
		require.NotContains(t, string(stored), "whsec_x")
	})

	t.Run("a companion's refusal rolls back and stores nothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		refused := errors.New("replayed")
		req := b.req("A", nil, []string{"k"})
		var got []string
		req.Companion = &idempotency.Companion{
			SQL: func(first int) (string, []any) {
				return fmt.Sprintf("SELECT $%d::text AS v UNION ALL SELECT $%d::text", first, first+1), []any{"one", "two"}
			},
			Judge: func(ctx context.Context, tx bun.Tx, returned []string) error { got = returned; return refused },
		}
		_, err := idempotency.Run(ctx, b.db.Bun, req, b.work("x"))
		require.ErrorIs(t, err, refused)
		require.ElementsMatch(t, []string{"one", "two"}, got, "the companion ran with the keys' claim")
		require.Zero(t, b.effects(t))
		var n int
		require.NoError(t, b.db.Bun.NewRaw("SELECT count(*) FROM idempotency_keys WHERE partner_id = ?", b.partnerID).Scan(ctx, &n))
		require.Zero(t, n)
	})

	t.Run("a companion beside an expired key is judged on what it inserted", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		_, err := b.db.Bun.NewRaw("INSERT INTO idempotency_keys (partner_id, key, request_hash, created_at, expires_at) VALUES (?, 'k', '\\x00', ?, ?)",
			b.partnerID, b.now.Add(-72*time.Hour), b.now.Add(-time.Hour)).Exec(ctx)
		require.NoError(t, err)
		var got []string
		req := b.req("A", nil, []string{"k"})
		req.Companion = &idempotency.Companion{
			SQL:   func(first int) (string, []any) { return fmt.Sprintf("SELECT $%d::text AS v", first), []any{"x"} },
			Judge: func(_ context.Context, _ bun.Tx, returned []string) error { got = returned; return nil },
		}
		_, err = idempotency.Run(ctx, b.db.Bun, req, b.work("x"))
		require.NoError(t, err)
		require.Equal(t, []string{"x"}, got)
	})

	t.Run("a companion is not judged when an earlier answer is replayed", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		judged := 0
		comp := &idempotency.Companion{
			SQL:   func(first int) (string, []any) { return fmt.Sprintf("SELECT $%d::text AS v", first), []any{"x"} },
			Judge: func(context.Context, bun.Tx, []string) error { judged++; return nil },
		}
		req := b.req("A", nil, []string{"k"})
		req.Companion = comp
		_, err := idempotency.Run(ctx, b.db.Bun, req, b.work("x"))
		require.NoError(t, err)
		again, err := idempotency.Run(ctx, b.db.Bun, req, b.work("x"))
		require.NoError(t, err)
		require.True(t, again.Replayed)
		require.Equal(t, 1, judged)
	})
}
