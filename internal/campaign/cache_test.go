package campaign

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/dbtest"
	"github.com/perkshq/perks/internal/keyring"
	"github.com/perkshq/perks/internal/partner"
)

// TestEarnsNeverCompile: a campaign's condition compiles when it is saved;
// the earns that follow use the cached program. Not parallel: it reads
// the package's compile counter.
func TestEarnsNeverCompile(t *testing.T) {
	ctx := context.Background()
	tx := dbtest.Tx(t)
	keys, err := keyring.New(make([]byte, keyring.KeySize))
	require.NoError(t, err)
	p, err := partner.NewService(keys).Upsert(ctx, tx, partner.CreateParams{Slug: "p-" + uuid.NewString()[:8], Name: "P"})
	require.NoError(t, err)
	svc := NewService()
	bonus := int64(5)
	_, _, err = svc.PutTx(ctx, tx, p.ID, "c", Input{Name: "C", BonusPoints: &bonus, Condition: "earn.points > 1 && user.country == ''", Stacking: StackAdditive, Enabled: true})
	require.NoError(t, err)
	before := compiles.Load()
	for range 20 {
		awards, err := svc.ApplyTx(ctx, tx, p.ID, uuid.New(), Facts{Action: "a", BasePoints: 10})
		require.NoError(t, err)
		require.Len(t, awards, 1)
	}
	require.Equal(t, before, compiles.Load())

	// Another process (an empty cache) compiles once, then not again.
	other := NewService()
	for range 5 {
		_, err := other.ApplyTx(ctx, tx, p.ID, uuid.New(), Facts{Action: "a", BasePoints: 10})
		require.NoError(t, err)
	}
	require.Equal(t, before+1, compiles.Load())
}
