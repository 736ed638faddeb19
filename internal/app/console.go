package app

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"riverqueue.com/riverui"

	"github.com/perkshq/perks/internal/console"
	"github.com/perkshq/perks/internal/ratelimit"
	"github.com/perkshq/perks/internal/report"
)

// consoleParts are the platform console's moving parts: River's UI, whose
// background services start with its first request and stop with
// StopBackground, and the usage counter's flusher.
type consoleParts struct {
	mu      sync.Mutex
	riverUI *riverui.Handler
	started bool
	ctx     context.Context
	cancel  context.CancelFunc
}

// mountConsole builds the console (/admin) with River's UI mounted behind
// its sign-in, on mux.
func (a *App) mountConsole(mux *http.ServeMux, mail console.Mailer) {
	a.console.ctx, a.console.cancel = context.WithCancel(context.Background())
	c := &console.Console{
		DB: a.DB.Bun, Accounts: a.Accounts, Audit: a.Audit, Partners: a.Partners, Merchants: a.Merchants, Log: a.Log,
		BaseURL: a.Config.PublicBaseURL, Secure: !a.Config.Development(), Limiter: &ratelimit.Limiter{Now: a.now}, Mailer: mail,
		Now: a.now,
	}
	h, err := riverui.NewHandler(&riverui.HandlerOpts{
		Endpoints: riverui.NewEndpoints(a.Jobs.Work, nil),
		Logger:    a.Log.With(slog.String("component", "riverui")),
		Prefix:    console.Path + "/riverui",
		// Job arguments carry ids only (never personal data), but the
		// operator opens them on purpose.
		JobListHideArgsByDefault: true,
	})
	if err != nil {
		a.Log.Error("the River UI is unavailable in the console", "error", err.Error())
	} else {
		a.console.riverUI = h
		c.RiverUI = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			a.startRiverUI()
			h.ServeHTTP(w, r)
		})
	}
	a.Console = c
	c.Register(mux)
}

// startRiverUI starts River UI's background services once, on its first
// request (most processes never serve it).
func (a *App) startRiverUI() {
	a.console.mu.Lock()
	defer a.console.mu.Unlock()
	if a.console.started || a.console.riverUI == nil {
		return
	}
	if err := a.console.riverUI.Start(a.console.ctx); err != nil {
		a.Log.Error("start the River UI", "error", err.Error())
		return
	}
	a.console.started = true
}

// StopBackground stops what New and the console started (the partner
// cache's listener, River UI's services). Serve calls it on shutdown; tests
// that build an App call it when done.
func (a *App) StopBackground() {
	if a.console.cancel != nil {
		a.console.cancel()
	}
	if a.stopAuthCache != nil {
		a.stopAuthCache()
		a.stopAuthCache = nil
	}
}

// flushUsage flushes the request counts every report.FlushEvery until ctx
// ends, then once more (on shutdown) with a few seconds to do it.
func (a *App) flushUsage(ctx context.Context) {
	t := time.NewTicker(report.FlushEvery)
	defer t.Stop()
	flush := func(ctx context.Context) {
		if _, err := a.Usage.Flush(ctx, a.DB.Bun, a.now()); err != nil {
			a.Log.Warn("flush request counts", "error", err.Error())
		}
	}
	for {
		select {
		case <-t.C:
			flush(ctx)
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			flush(fctx)
			cancel()
			return
		}
	}
}
