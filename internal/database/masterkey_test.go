package database_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/database"
	"github.com/perkshq/perks/internal/dbtest"
	"github.com/perkshq/perks/internal/keyring"
)

func randomKey(t *testing.T) (*keyring.Keyring, string) {
	t.Helper()
	raw := make([]byte, keyring.KeySize)
	_, _ = rand.Read(raw)
	k, err := keyring.New(raw)
	require.NoError(t, err)
	return k, base64.StdEncoding.EncodeToString(raw)
}

// TestCheckMasterKeyRefusesAnotherKey: the first key used with a database is
// recorded; the same key passes again, another is refused with an error
// that names the setting and shows neither key nor fingerprint.
func TestCheckMasterKeyRefusesAnotherKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.NewDB(t)
	first, _ := randomKey(t)
	second, secondB64 := randomKey(t)

	recorded, err := database.MasterKeyRecorded(ctx, db.Bun)
	require.NoError(t, err)
	require.False(t, recorded)
	require.NoError(t, database.CheckMasterKey(ctx, db.Bun, first))
	require.NoError(t, database.CheckMasterKey(ctx, db.Bun, first), "the same key again")
	recorded, err = database.MasterKeyRecorded(ctx, db.Bun)
	require.NoError(t, err)
	require.True(t, recorded)

	err = database.CheckMasterKey(ctx, db.Bun, second)
	require.ErrorIs(t, err, database.ErrMasterKeyMismatch)
	require.ErrorContains(t, err, "PERKS_MASTER_KEY")
	require.ErrorContains(t, err, "PERKS_SECRETS_DIR")
	for _, secret := range []string{secondB64, hex.EncodeToString(second.Fingerprint()), hex.EncodeToString(first.Fingerprint())} {
		require.NotContains(t, err.Error(), secret)
	}
	require.NoError(t, database.CheckMasterKey(ctx, db.Bun, first), "the refusal changed nothing")
}

// TestCheckMasterKeyFirstUseRace: processes starting together with
// different keys on a fresh database: exactly one key wins.
func TestCheckMasterKeyFirstUseRace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.NewDB(t)
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		k, _ := randomKey(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = database.CheckMasterKey(ctx, db.Bun, k)
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
		} else {
			require.ErrorIs(t, err, database.ErrMasterKeyMismatch)
		}
	}
	require.Equal(t, 1, ok)
}
