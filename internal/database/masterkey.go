package database

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"

	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/keyring"
)

// ErrMasterKeyMismatch: the process holds another master key than the one
// the database was first used with.
var ErrMasterKeyMismatch = errors.New("the master key is not the one this database is used with")

// CheckMasterKey makes every process agree on the master key: the first one
// to call it records the key's fingerprint (keyring.Fingerprint) in
// master_key_fingerprint; later calls with another key fail with
// ErrMasterKeyMismatch and a message naming the settings, never the key.
// The server calls it at startup and the CLI before any command that seals
// or unseals a secret (app.LoadKeyringFor), so a CLI run with a stray
// development key is refused instead of sealing a partner secret that the
// server can never open. Concurrent first calls are safe: the insert does
// nothing when a row exists, and the row that won is what is compared.
func CheckMasterKey(ctx context.Context, db bun.IDB, keys *keyring.Keyring) error {
	fp := keys.Fingerprint()
	if _, err := db.NewRaw("INSERT INTO master_key_fingerprint (fingerprint) VALUES (?) ON CONFLICT (singleton) DO NOTHING", fp).Exec(ctx); err != nil {
		return fmt.Errorf("record the master key fingerprint (are migrations applied? `perks migrate`): %w", err)
	}
	var stored []byte
	if err := db.NewRaw("SELECT fingerprint FROM master_key_fingerprint").Scan(ctx, &stored); err != nil {
		return fmt.Errorf("read the master key fingerprint: %w", err)
	}
	if subtle.ConstantTimeCompare(stored, fp) != 1 {
		return fmt.Errorf("%w: secrets sealed under one key never open under the other. "+
			"Set PERKS_MASTER_KEY to the key the server uses (in development, the master.key file in PERKS_SECRETS_DIR: "+
			"run from the repository or set PERKS_SECRETS_DIR to an absolute path)", ErrMasterKeyMismatch)
	}
	return nil
}

// MasterKeyRecorded reports whether a master key fingerprint is recorded,
// so development never generates a fresh key for a database that already
// has one (it could only be refused).
func MasterKeyRecorded(ctx context.Context, db bun.IDB) (bool, error) {
	var one int
	err := db.NewRaw("SELECT 1 FROM master_key_fingerprint").Scan(ctx, &one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read the master key fingerprint: %w", err)
	}
	return true, nil
}
