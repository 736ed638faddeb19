package app

import (
	"log/slog"

	"github.com/perkshq/perks/internal/config"
	"github.com/perkshq/perks/internal/database"
	"github.com/perkshq/perks/internal/ratelimit"
)

// sharedLimiter is the PostgreSQL-backed limiter that makes rate limits
// hold across replicas (nil when PERKS_RATE_LIMIT_SHARED is false). A
// failed lease falls back to a per-replica bucket and is logged without
// the partner's data.
func (a *App) sharedLimiter(cfg *config.Config, db *database.DB, log *slog.Logger) *ratelimit.Shared {
	if !cfg.RateLimitShared {
		return nil
	}
	return &ratelimit.Shared{
		DB: db.Bun, Now: a.now, Local: &ratelimit.Limiter{Now: a.now},
		OnError: func(err error) { log.Warn("rate limit lease failed; limiting per replica", "error", err) },
	}
}
