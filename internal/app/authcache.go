package app

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/perkshq/perks/internal/database"
	"github.com/perkshq/perks/internal/partner"
)

// startAuthCache gives the partner service its authentication cache and
// starts the listener that keeps it correct (partner.Cache). LISTEN needs a
// session of its own: through a transaction pooler it uses the direct
// connection (PERKS_DIRECT_DATABASE_URL), and without one the cache stays
// off and authentication reads the database on every request.
func (a *App) startAuthCache() {
	src := a.DB
	if a.directDB != nil {
		src = a.directDB
	} else if database.Pooled() {
		a.Log.Info("partner cache off: LISTEN needs PERKS_DIRECT_DATABASE_URL behind a transaction pooler")
		return
	}
	cache := partner.NewCache()
	a.Partners.Cache = cache
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	cfg := src.Pool.Config().ConnConfig
	go func() {
		defer close(done)
		cache.Listen(ctx, func(ctx context.Context) (*pgx.Conn, error) {
			return pgx.ConnectConfig(ctx, cfg.Copy())
		}, a.Log)
	}()
	a.stopAuthCache = func() { cancel(); <-done }
}
