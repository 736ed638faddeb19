package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/dbtest"
	"github.com/perkshq/perks/internal/keyring"
	"github.com/perkshq/perks/internal/partner"
)

// TestSandboxCLI: `perks partner sandbox` creates the sandbox once and
// prints its first HMAC secret (which opens as the credential's secret),
// shows it afterwards; `reset` needs --yes, wipes the users and keeps the
// credential.
func TestSandboxCLI(t *testing.T) {
	t.Parallel()
	penv := testEnv{}
	db, url := dbtest.NewDBWithURL(t)
	master := make([]byte, 32)
	_, _ = rand.Read(master)
	penv.set("DATABASE_URL", url)
	penv.set("PERKS_SECRETS_DIR", t.TempDir())
	penv.set("PERKS_MASTER_KEY", base64.StdEncoding.EncodeToString(master))
	keys, err := keyring.New(master)
	require.NoError(t, err)
	svc := partner.NewService(keys)
	run := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := penv.run(context.Background(), args, &out, &errOut)
		return out.String(), err
	}

	_, err = run("partner", "create", "--slug", "initech", "--name", "Initech")
	require.NoError(t, err)
	out, err := run("partner", "sandbox", "--partner", "initech")
	require.NoError(t, err, out)
	require.Contains(t, out, "created sandbox initech-sandbox")
	secret := regexp.MustCompile(`hmac secret: (sbx_[0-9a-f]{64})`).FindStringSubmatch(out)
	require.NotNil(t, secret, out)
	sb, secrets, err := svc.BySlugWithSecrets(t.Context(), db.Bun, "initech-sandbox", partner.KindHMAC)
	require.NoError(t, err)
	require.Len(t, secrets, 1)
	require.Equal(t, secret[1], string(secrets[0].Secret))

	// A sandbox shares its live partner's portal accounts: no invitations
	// of its own.
	out, err = run("portal", "invite", "--partner", "initech-sandbox", "--email", "dev@initech.example")
	require.Error(t, err, out)
	require.Contains(t, err.Error(), "is a sandbox")
	n, err := db.Bun.NewSelect().Table("accounts").Where("realm_id = ?", sb.ID).Count(t.Context())
	require.NoError(t, err)
	require.Zero(t, n)

	out, err = run("partner", "sandbox", "--partner", "initech")
	require.NoError(t, err)
	require.Contains(t, out, "sandbox initech-sandbox")
	require.NotContains(t, out, "sbx_")

	_, err = db.Bun.NewRaw("INSERT INTO users (partner_id, external_id_hash) VALUES (?, sha256('x'::bytea))", sb.ID).Exec(t.Context())
	require.NoError(t, err)
	_, err = run("partner", "sandbox", "reset", "--partner", "initech")
	require.ErrorContains(t, err, "--yes")
	out, err = run("partner", "sandbox", "reset", "--partner", "initech", "--yes")
	require.NoError(t, err, out)
	require.Contains(t, out, "users: 1 deleted")
	var users int
	require.NoError(t, db.Bun.NewRaw("SELECT count(*) FROM users WHERE partner_id = ?", sb.ID).Scan(t.Context(), &users))
	require.Zero(t, users)
	_, secrets, err = svc.BySlugWithSecrets(t.Context(), db.Bun, "initech-sandbox", partner.KindHMAC)
	require.NoError(t, err)
	require.Len(t, secrets, 1, "credentials kept")

	_, err = run("partner", "create", "--slug", "other-sandbox", "--name", "Other")
	require.ErrorContains(t, err, "reserved for sandboxes")
}
