package httpserver_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/dbtest"
)

// TestDatabaseOutageIs503: the app's own database stops accepting
// connections and every open one is terminated (as in a failover or a
// restart). Partner reads and writes, a merchant call and /readyz answer 503
// with Retry-After and the DATABASE_UNAVAILABLE code, not a 500; when the
// database is back, the same requests work again.
func TestDatabaseOutageIs503(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	env.FundedUser("acme", "outage", "SG", 10)
	u, err := url.Parse(env.DBURL)
	require.NoError(t, err)
	name := strings.TrimPrefix(u.Path, "/")
	admin := func(sql string) {
		conn, err := pgx.Connect(context.Background(), dbtest.AdminURL(t))
		require.NoError(t, err)
		defer conn.Close(context.Background())
		_, err = conn.Exec(context.Background(), sql)
		require.NoError(t, err, sql)
	}
	down := func() {
		admin("ALTER DATABASE " + pgx.Identifier{name}.Sanitize() + " ALLOW_CONNECTIONS false")
		admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '" + name + "' AND pid <> pg_backend_pid()")
	}
	up := func() { admin("ALTER DATABASE " + pgx.Identifier{name}.Sanitize() + " ALLOW_CONNECTIONS true") }

	requests := []struct {
		name string
		send func() *apptest.Response
	}{
		{"read", func() *apptest.Response {
			return env.Partner("acme", http.MethodGet, "/integrations/users/outage", nil)
		}},
		{"write", func() *apptest.Response {
			return env.Partner("acme", http.MethodPost, "/integrations/actions", []byte(`{"externalUserId":"outage","action":"purchase","points":3}`))
		}},
		{"consumer", func() *apptest.Response {
			return env.Consumer(env.Token("acme", "outage", nil), http.MethodGet, "/me", nil)
		}},
	}
	ready := func() *apptest.Response {
		req, _ := http.NewRequest(http.MethodGet, env.Server.URL+"/readyz", nil)
		return env.Do(req)
	}

	down()
	t.Cleanup(up) // dbtest drops the database at the end
	for _, r := range requests {
		res := r.send()
		require.Equal(t, http.StatusServiceUnavailable, res.StatusCode, "%s: %s", r.name, res.Body)
		require.Equal(t, "DATABASE_UNAVAILABLE", res.Code(), r.name)
		require.NotEmpty(t, res.Header.Get("Retry-After"), r.name)
		require.True(t, strings.HasPrefix(res.Header.Get("Content-Type"), "application/problem+json"), r.name)
	}
	gql := env.GraphQL(env.Token("acme", "outage", nil), `{ me { balance } }`, nil)
	require.Equal(t, "DATABASE_UNAVAILABLE", gql.ErrorCode(), "%+v", gql.Errors)
	res := ready()
	require.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
	require.Contains(t, string(res.Body), "database unreachable")
	require.NotContains(t, env.Logs.String(), `"msg":"internal error"`)

	up()
	for _, r := range requests {
		res := r.send()
		require.Less(t, res.StatusCode, 300, "%s after recovery: %s", r.name, res.Body)
	}
	require.Equal(t, http.StatusOK, ready().StatusCode)
}
