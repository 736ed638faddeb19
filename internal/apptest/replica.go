package apptest

import (
	"context"
	"log/slog"
	"net/http/httptest"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/app"
	"github.com/perkshq/perks/internal/database"
	"github.com/perkshq/perks/internal/httpserver"
)

// Replica starts a second app on e's database, as another `perks serve`
// replica would be: its own connection pool, server and in-memory state
// (caches, rate-limit pockets), the same configuration, master key, clock
// and seeded partners. It never runs workers. The returned Env shares e's
// database and clock; requests through it reach only the replica.
func (e *Env) Replica() *Env {
	t := e.T
	t.Helper()
	db, err := database.Open(context.Background(), e.DBURL, 8)
	require.NoError(t, err)
	logs := &SyncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := app.New(e.App.Config, log, db, e.App.Keys, app.WithClock(e.App.Now), app.WithResolver(e.App.Resolver))
	require.NoError(t, err)
	waitAuthCache(t, a)
	srv := httptest.NewUnstartedServer(contract(t, a.Handler))
	srv.Config.MaxHeaderBytes = httpserver.ServerMaxHeaderBytes
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		a.StopBackground()
		db.Close()
		if t.Failed() {
			t.Logf("replica log:\n%s", tail(logs.String(), 3000))
		}
	})
	return &Env{
		T: t, App: a, DB: db, DBURL: e.DBURL, Server: srv, Clock: e.Clock, Logs: logs, Secrets: e.Secrets,
		Acme: e.Acme, Globex: e.Globex, sigs: e.sigs,
	}
}
