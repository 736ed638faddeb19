package partner_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/partner"
)

// TestAuthCacheAcrossReplicas: a replica that authenticated acme from its
// cache stops accepting a credential as soon as another replica disables
// it (the trigger's notification), and accepts a new one at once.
func TestAuthCacheAcrossReplicas(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := apptest.New(t)
	replica := env.Replica()
	for _, e := range []*apptest.Env{env, replica} {
		require.Eventually(t, e.App.Partners.Cache.Live, 5*time.Second, 5*time.Millisecond, "the listener listens")
	}
	acme := env.Acme.Partner.ID

	create := func(e *apptest.Env, id string) int {
		return e.Partner("acme", http.MethodPost, "/integrations/users", []byte(`{"externalUserId":"`+id+`"}`)).StatusCode
	}
	require.Equal(t, http.StatusCreated, create(replica, "u1"))
	require.Equal(t, http.StatusCreated, create(replica, "u2"), "served from the cache")

	secrets, err := env.App.Partners.EnabledSecrets(ctx, env.DB.Bun, acme, partner.KindHMAC)
	require.NoError(t, err)
	require.Len(t, secrets, 1)
	before := replica.App.Partners.Cache.Notifications()
	// The other replica's write: this replica hears of it only through
	// PostgreSQL.
	require.NoError(t, env.App.Partners.SetCredentialEnabled(ctx, env.DB.Bun, acme, secrets[0].CredentialID, false))
	require.Eventually(t, func() bool { return replica.App.Partners.Cache.Notifications() > before }, 5*time.Second, time.Millisecond)
	require.Equal(t, http.StatusUnauthorized, create(replica, "u3"), "a disabled credential no longer verifies")

	require.NoError(t, env.App.Partners.SetCredentialEnabled(ctx, env.DB.Bun, acme, secrets[0].CredentialID, true))
	require.Equal(t, http.StatusCreated, create(env, "u4"), "the writing replica sees its own write at once")
	require.Eventually(t, func() bool { return create(replica, "u5-"+time.Now().Format("150405.000000")) == http.StatusCreated }, 5*time.Second, 5*time.Millisecond)
}

// TestRecordingUseNotifiesNobody: last_used_at, touched at most once a
// minute per credential, is the one change that does not empty every
// replica's cache; any other change to a credential does.
func TestRecordingUseNotifiesNobody(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := apptest.New(t)
	conn, err := pgx.Connect(ctx, env.DBURL)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	_, err = conn.Exec(ctx, "LISTEN "+partner.AuthChannel)
	require.NoError(t, err)

	next := func() string {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		n, err := conn.WaitForNotification(wctx)
		require.NoError(t, err)
		return n.Payload
	}
	exec := func(q string) {
		_, err := env.DB.Pool.Exec(ctx, q, env.Acme.Partner.ID)
		require.NoError(t, err)
	}
	// Notifications arrive in commit order: had the touch notified, its
	// empty payload would come before the marker.
	exec("UPDATE partner_credentials SET last_used_at = now() WHERE partner_id = $1")
	exec("SELECT pg_notify('" + partner.AuthChannel + "', 'marker-' || $1::text)")
	require.Equal(t, "marker-"+env.Acme.Partner.ID.String(), next())

	exec("UPDATE partner_credentials SET description = description || '.' WHERE partner_id = $1")
	require.Equal(t, "", next(), "another column notifies")
	exec("UPDATE partners SET updated_at = now() WHERE id = $1")
	require.Equal(t, "", next())
	exec("UPDATE consumer_keys SET enabled = enabled WHERE partner_id = $1")
	require.Equal(t, "", next())
}
