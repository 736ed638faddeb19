package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/database"
	"github.com/perkshq/perks/internal/doctor"
	"github.com/perkshq/perks/internal/keyring"
)

// TestDoctor runs `perks doctor` against a deployment made healthy, then
// breaks one thing at a time and checks the report names it and says what
// to fix: no River leader, a skewed clock, another master key, a late
// webhook backlog, a pending migration, an unreachable database.
func TestDoctor(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	ctx := context.Background()
	master := make([]byte, keyring.KeySize)
	_, _ = rand.Read(master)
	keys, err := keyring.New(master)
	require.NoError(t, err)
	require.NoError(t, database.CheckMasterKey(ctx, env.DB.Bun, keys), "the server recorded its key")
	penv := testEnv{"DATABASE_URL": env.DBURL, "PERKS_MASTER_KEY": base64.StdEncoding.EncodeToString(master), "PERKS_ENV": "production"}

	doctorRun := func(e testEnv, now func() time.Time) (map[string]doctor.Result, error) {
		var out, errb bytes.Buffer
		err := runner{stdout: &out, stderr: &errb, lookupEnv: e.lookup, now: now}.run(ctx, "doctor", "--json")
		var rs []doctor.Result
		require.NoError(t, json.Unmarshal(out.Bytes(), &rs), "%s%s", out.String(), errb.String())
		m := map[string]doctor.Result{}
		for _, r := range rs {
			m[r.Check] = r
		}
		require.Len(t, m, 6)
		return m, err
	}
	status := func(rs map[string]doctor.Result) map[string]doctor.Status {
		out := map[string]doctor.Status{}
		for k, r := range rs {
			out[k] = r.Status
			if r.Status != doctor.OK && r.Status != doctor.Skip {
				require.NotEmpty(t, r.Fix, "%s says what to fix", k)
			}
		}
		return out
	}

	// No worker process: nobody leads River.
	rs, err := doctorRun(penv, nil)
	require.ErrorIs(t, err, errDoctor)
	require.Equal(t, map[string]doctor.Status{"database": doctor.OK, "migrations": doctor.OK, "master key": doctor.OK,
		"clock": doctor.OK, "river leader": doctor.Fail, "webhook backlog": doctor.OK}, status(rs))
	require.Contains(t, rs["river leader"].Fix, "perks serve")

	_, err = env.DB.Bun.ExecContext(ctx, "INSERT INTO river_leader (elected_at, expires_at, leader_id, name) VALUES (now(), now() + interval '1 minute', 'host-1', 'default')")
	require.NoError(t, err)
	rs, err = doctorRun(penv, nil)
	require.NoError(t, err, "%+v", rs)
	require.Contains(t, rs["river leader"].Detail, "host-1 leads")

	// A clock an hour ahead.
	rs, err = doctorRun(penv, func() time.Time { return time.Now().Add(time.Hour) })
	require.ErrorIs(t, err, errDoctor)
	require.Equal(t, doctor.Fail, rs["clock"].Status)
	require.Contains(t, rs["clock"].Detail, "ahead of the database")
	require.Contains(t, rs["clock"].Fix, "NTP")

	// Another master key.
	other := make([]byte, keyring.KeySize)
	_, _ = rand.Read(other)
	wrong := testEnv{"DATABASE_URL": env.DBURL, "PERKS_MASTER_KEY": base64.StdEncoding.EncodeToString(other), "PERKS_ENV": "production"}
	rs, err = doctorRun(wrong, nil)
	require.ErrorIs(t, err, errDoctor)
	require.Equal(t, doctor.Fail, rs["master key"].Status)
	require.Contains(t, rs["master key"].Fix, "PERKS_MASTER_KEY")

	// A delivery due two hours ago and never sent.
	ep := env.PartnerJSON("acme", http.MethodPost, "/integrations/webhook-endpoints",
		map[string]any{"url": "https://hooks.acme.example.test/perks"}, map[string]string{"Idempotency-Key": "doctor-ep"})
	require.Equal(t, http.StatusCreated, ep.StatusCode, "%s", ep.Body)
	env.Clock.Set(time.Now().Add(-2 * time.Hour))
	res := env.PartnerJSON("acme", http.MethodPost, "/integrations/users", map[string]any{"externalUserId": "doctor-user"})
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	rs, err = doctorRun(penv, nil)
	require.ErrorIs(t, err, errDoctor)
	require.Equal(t, doctor.Fail, rs["webhook backlog"].Status, "%+v", rs["webhook backlog"])
	require.Contains(t, rs["webhook backlog"].Detail, "1 deliveries due, the oldest 2h0m")

	// A pending migration.
	_, err = env.DB.Bun.ExecContext(ctx, "DELETE FROM bun_migrations WHERE name = (SELECT max(name) FROM bun_migrations)")
	require.NoError(t, err)
	rs, _ = doctorRun(penv, nil)
	require.Equal(t, doctor.Fail, rs["migrations"].Status)
	require.Contains(t, rs["migrations"].Fix, "perks migrate")

	// No database: the rest is skipped, not failed twice.
	rs, err = doctorRun(testEnv{"DATABASE_URL": "postgres://perks@127.0.0.1:1/x?sslmode=disable&connect_timeout=1", "PERKS_ENV": "production", "PERKS_MASTER_KEY": penv["PERKS_MASTER_KEY"]}, nil)
	require.ErrorIs(t, err, errDoctor)
	require.Equal(t, doctor.Fail, rs["database"].Status)
	require.Contains(t, rs["database"].Fix, "DATABASE_URL")
	require.Equal(t, doctor.Skip, rs["river leader"].Status)
}
