package bulk_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/ledger"
)

type resendOut struct {
	OK, Unprotected int
	Warning         string
	Results         []struct {
		Status    string
		EntryID   *int64
		Duplicate bool
		Protected *bool
	}
}

// TestMultistoreResend: a resent multistore never earns twice what it
// promises to protect. With an Idempotency-Key the whole call is protected
// (the resend replays the stored answer and earns nothing); without one,
// items with a reference are protected and items without one are not, and
// the answer says so item by item (protected: false) and in total.
func TestMultistoreResend(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	provisionMany(t, env, "m", 2)
	body := []byte(`{"items":[
		{"externalUserId":"m0","action":"purchase","points":10,"reference":"order-1"},
		{"externalUserId":"m1","action":"purchase","points":20},
		{"externalUserId":"nobody","action":"purchase","points":30}]}`)
	send := func(headers ...map[string]string) resendOut {
		res := env.Partner("acme", http.MethodPost, "/integrations/actions/multistore", body, headers...)
		require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
		var out resendOut
		require.NoError(t, json.Unmarshal(res.Body, &out))
		return out
	}
	entries := func() int { return env.Count("ledger_entries", "kind = 'earn'") }

	t.Run("with an Idempotency-Key every item is protected", func(t *testing.T) {
		key := map[string]string{"Idempotency-Key": "batch-1"}
		first := send(key)
		require.Equal(t, 0, first.Unprotected)
		require.Empty(t, first.Warning)
		require.True(t, *first.Results[0].Protected)
		require.True(t, *first.Results[1].Protected)
		require.Nil(t, first.Results[2].Protected, "a failed item earned nothing")
		n := entries()
		again := send(key)
		require.Equal(t, first, again)
		require.Equal(t, n, entries(), "the resend earned again")
	})

	t.Run("without a key an item without a reference is not protected, and says so", func(t *testing.T) {
		first := send()
		require.Equal(t, 1, first.Unprotected)
		require.Contains(t, first.Warning, "Idempotency-Key")
		require.True(t, *first.Results[0].Protected)
		require.False(t, *first.Results[1].Protected)
		n := entries()
		again := send()
		require.True(t, again.Results[0].Duplicate, "order-1 earned twice")
		require.Equal(t, *first.Results[0].EntryID, *again.Results[0].EntryID)
		require.False(t, *again.Results[1].Protected)
		require.Equal(t, n+1, entries(), "only the unprotected item earns again")
	})
	require.NoError(t, ledger.CheckInvariants(context.Background(), env.DB.Bun))
}
