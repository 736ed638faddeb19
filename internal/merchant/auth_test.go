package merchant_test

import (
	"context"
	"encoding/base64"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/dbtest"
	"github.com/perkshq/perks/internal/merchant"
)

// TestAuthenticateReplays: the merchant scheme's replay rules
// (docs/auth.md, "Replays, retries and request binding"). Reads are never
// recorded nor refused; a write is recorded once, by Authenticate or, when
// deferred, by Remember in the caller's transaction (rolled back with it);
// a repeat is SIGNATURE_REPLAYED with a detail that fits the request.
func TestAuthenticateReplays(t *testing.T) {
	t.Parallel()
	setup := func(t *testing.T) (bun.Tx, *merchant.Service, func(method, path, body, key string, deferred bool) merchant.SignedRequest) {
		tx := dbtest.Tx(t)
		ctx := context.Background()
		var pid string
		require.NoError(t, tx.NewRaw("INSERT INTO partners (slug, name, display_name) VALUES ('replay-test', 'R', 'R') RETURNING id").Scan(ctx, &pid))
		now := time.Unix(1_790_000_000, 0)
		svc := &merchant.Service{Skew: 300 * time.Second, Now: func() time.Time { return now }}
		var cred *merchant.NewCredential
		require.NoError(t, tx.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			_, c, err := svc.CreateTx(ctx, tx, mustParse(t, pid), "Replay Shop", "")
			cred = c
			return err
		}))
		ts := strconv.FormatInt(now.Unix(), 10)
		sign := func(method, path, body, key string, deferred bool) merchant.SignedRequest {
			return merchant.SignedRequest{
				APIKey: cred.APIKey, Timestamp: ts, IdempotencyKey: key, Method: method, PathQuery: path, Body: []byte(body),
				Signature:   merchant.Sign(cred.PrivateKey, merchant.Canonical(ts, method, path, []byte(body), key)),
				DeferReplay: deferred,
			}
		}
		return tx, svc, sign
	}
	code := func(err error) apperr.Code {
		var e *apperr.Error
		if errors.As(err, &e) {
			return e.Code
		}
		return ""
	}
	detail := func(err error) string {
		var e *apperr.Error
		require.True(t, errors.As(err, &e), "%v", err)
		return e.Message
	}
	const body = `{"code":"ACME-1234-ABCD","otp":"123456"}`

	t.Run("reads are never recorded", func(t *testing.T) {
		t.Parallel()
		tx, svc, sign := setup(t)
		get := sign("GET", "/merchant/vouchers/ACME-1234-ABCD", "", "", false)
		for range 3 {
			_, err := svc.Authenticate(t.Context(), tx, get)
			require.NoError(t, err)
		}
		var n int
		require.NoError(t, tx.NewRaw("SELECT count(*) FROM replay_cache").Scan(t.Context(), &n))
		require.Zero(t, n)
	})

	t.Run("a write recorded by Authenticate is refused when repeated", func(t *testing.T) {
		t.Parallel()
		tx, svc, sign := setup(t)
		post := sign("POST", "/merchant/redemptions", body, "", false)
		_, err := svc.Authenticate(t.Context(), tx, post)
		require.NoError(t, err)
		_, err = svc.Authenticate(t.Context(), tx, post)
		require.Equal(t, apperr.CodeSignatureReplayed, code(err))
		require.Contains(t, detail(err), "send an Idempotency-Key")
		// Another base64 spelling of the signature is the same signature.
		raw, ok := merchant.DecodeSignature(post.Signature)
		require.True(t, ok)
		post.Signature = base64.RawURLEncoding.EncodeToString(raw)
		_, err = svc.Authenticate(t.Context(), tx, post)
		require.Equal(t, apperr.CodeSignatureReplayed, code(err))
	})

	t.Run("a deferred write is recorded by Remember, with its transaction", func(t *testing.T) {
		t.Parallel()
		tx, svc, sign := setup(t)
		post := sign("POST", "/merchant/redemptions", body, "till-1", true)
		p1, err := svc.Authenticate(t.Context(), tx, post)
		require.NoError(t, err)
		p2, err := svc.Authenticate(t.Context(), tx, post)
		require.NoError(t, err, "nothing recorded yet: the idempotency layer answers first")

		// Remembered in a write that rolls back: forgotten with it.
		errFailed := errors.New("the write failed")
		err = tx.RunInTx(t.Context(), nil, func(ctx context.Context, wtx bun.Tx) error {
			require.NoError(t, svc.Remember(ctx, wtx, p1))
			return errFailed
		})
		require.ErrorIs(t, err, errFailed)
		require.NoError(t, svc.Remember(t.Context(), tx, p1), "then remembered on its own")
		err = svc.Remember(t.Context(), tx, p2)
		require.Equal(t, apperr.CodeSignatureReplayed, code(err))
		require.Contains(t, detail(err), "sign a new request", "it has a key: nothing was stored under it")
		require.NotContains(t, detail(err), "send an Idempotency-Key")

		// A read has nothing to remember.
		get, err := svc.Authenticate(t.Context(), tx, sign("GET", "/merchant/vouchers/ACME-1234-ABCD", "", "", true))
		require.NoError(t, err)
		require.NoError(t, svc.Remember(t.Context(), tx, get))
		require.NoError(t, svc.Remember(t.Context(), tx, get))
	})
}
