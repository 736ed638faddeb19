package httpserver

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/request"
	"github.com/perkshq/perks/internal/rest"
)

// CORSMaxAge is how long a browser may cache a /graphql preflight (the
// Access-Control-Max-Age header). Chromium caps it at 2 hours and Firefox
// at 24, so 2 hours is what browsers can use: one preflight per origin,
// tab and 2 hours instead of one per query.
const CORSMaxAge = 2 * time.Hour

// CORSTTL is how long the list of allowed origins is cached: a partner's
// new origin works within this delay on every replica.
const CORSTTL = 30 * time.Second

// corsAllowHeaders are the request headers a page may send to /graphql:
// the token (either header), the partner slug, content negotiation, and
// what Apollo Client adds.
const corsAllowHeaders = "Authorization, Content-Type, Accept, X-Partner-Slug, X-SaaSquatch-User-Token, X-Request-Id, Apollographql-Client-Name, Apollographql-Client-Version"

// corsExposeHeaders are the response headers a page may read.
const corsExposeHeaders = "X-Request-Id, Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, Perks-Environment"

// CORS lets browser apps on a partner's own domain call /graphql: an
// Origin that some partner lists (partners.cors_origins, exact origins
// set with `perks partner set --cors-origins`) gets
// Access-Control-Allow-Origin with that exact origin, never "*".
// Access-Control-Allow-Credentials is never sent: the consumer token goes
// in the Authorization header, and no cookie authenticates /graphql, so a
// page cannot borrow a user's session it does not already hold.
//
// A preflight carries no token, so the origin alone decides it: an origin
// listed by one partner may send any partner's token, which is no more
// than the page could do from its own server. Unlisted origins get a 403
// ORIGIN_NOT_ALLOWED preflight and no CORS header on other answers (the
// browser then hides the answer from the page); same-origin requests (the
// webview) need no CORS at all.
type CORS struct {
	// Origins lists every allowed origin (canonical, as browsers send them).
	Origins func(ctx context.Context) ([]string, error)
	Now     func() time.Time
	Log     *slog.Logger
	// TTL of the cached list (CORSTTL when zero).
	TTL time.Duration

	mu     sync.Mutex
	set    map[string]bool
	loaded time.Time
}

// allowed reports whether origin is listed, reading the list at most once
// per TTL. When the database cannot be read, the previous list keeps
// serving; with none, the origin is refused (and logged).
func (c *CORS) allowed(ctx context.Context, origin string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	ttl := c.TTL
	if ttl <= 0 {
		ttl = CORSTTL
	}
	now := c.Now()
	if c.set == nil || now.Sub(c.loaded) >= ttl || now.Before(c.loaded) {
		list, err := c.Origins(ctx)
		if err != nil {
			c.Log.WarnContext(ctx, "cors origins unavailable", "code", string(apperr.CodeOf(err)), "request_id", request.ID(ctx), "error", err.Error())
		} else {
			c.set = make(map[string]bool, len(list))
			for _, o := range list {
				c.set[o] = true
			}
			c.loaded = now
		}
	}
	return c.set[origin]
}

// preflight answers OPTIONS /graphql.
func (c *CORS) preflight(log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Add("Vary", "Origin")
		origin := r.Header.Get("Origin")
		if origin == "" || r.Header.Get("Access-Control-Request-Method") == "" {
			// Not a CORS preflight: an ordinary OPTIONS.
			h.Set("Allow", "OPTIONS, POST")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if !c.allowed(r.Context(), origin) {
			rest.WriteError(w, r, log, apperr.New(apperr.CodeOriginNotAllowed,
				"this origin may not call /graphql from a browser; the partner lists its origins with its operator (exact origins such as https://app.example.com)"))
			return
		}
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Allow-Methods", "POST")
		h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
		h.Set("Access-Control-Max-Age", strconv.Itoa(int(CORSMaxAge.Seconds())))
		w.WriteHeader(http.StatusNoContent)
	})
}

// wrap adds the CORS headers of an actual request from a listed origin.
func (c *CORS) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Add("Vary", "Origin")
		if origin := r.Header.Get("Origin"); origin != "" && !sameOrigin(r, origin) && c.allowed(r.Context(), origin) {
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
		}
		next.ServeHTTP(w, r)
	})
}

// sameOrigin reports whether origin is the request's own host (the
// webview's requests carry Origin on POST too); they need no CORS header.
func sameOrigin(r *http.Request, origin string) bool {
	_, host, ok := strings.Cut(origin, "://")
	return ok && strings.EqualFold(host, r.Host)
}
