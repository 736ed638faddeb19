package rest

import (
	"context"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/auth"
	"github.com/perkshq/perks/internal/catalog"
	"github.com/perkshq/perks/internal/database"
	"github.com/perkshq/perks/internal/earning"
	"github.com/perkshq/perks/internal/ledger"
	"github.com/perkshq/perks/internal/merchant"
	"github.com/perkshq/perks/internal/partner"
	"github.com/perkshq/perks/internal/request"
	"github.com/perkshq/perks/internal/user"
	"github.com/perkshq/perks/internal/voucher"
)

// API holds what the REST handlers need.
type API struct {
	DB           *database.DB
	Partners     *partner.Service
	Users        *user.Service
	Ledger       *ledger.Service
	Earning      *earning.Service
	Catalog      *catalog.Service
	Vouchers     *voucher.Service
	Merchants    *merchant.Service
	PartnerAuth  *auth.PartnerAuthenticator
	ConsumerAuth *auth.ConsumerAuthenticator
	MaxBodyBytes int64
	// MaxUploadBytes is the body limit of code uploads (WithBodyLimit).
	MaxUploadBytes int64
	Log            *slog.Logger
	Now            func() time.Time
}

func (a *API) now() time.Time {
	if a.Now == nil {
		return time.Now()
	}
	return a.Now()
}

// Router collects routes so that a known path with the wrong method answers
// 405 with an Allow header, as a problem document.
type Router struct {
	mux     *http.ServeMux
	methods map[string][]string
	log     *slog.Logger
}

// NewRouter returns an empty router.
func NewRouter(log *slog.Logger) *Router {
	return &Router{mux: http.NewServeMux(), methods: map[string][]string{}, log: log}
}

// Handle registers h for "METHOD /path".
func (rt *Router) Handle(method, path string, h http.Handler) {
	rt.mux.Handle(method+" "+path, h)
	rt.methods[path] = append(rt.methods[path], method)
}

// Mux exposes the underlying mux for non-REST handlers (GraphQL, web).
func (rt *Router) Mux() *http.ServeMux { return rt.mux }

// Finish registers the 405 and 404 fallbacks; call it after every Handle.
func (rt *Router) Finish() http.Handler {
	for path, methods := range rt.methods {
		allowed := append([]string(nil), methods...)
		if contains(allowed, http.MethodGet) && !contains(allowed, http.MethodHead) {
			allowed = append(allowed, http.MethodHead)
		}
		sort.Strings(allowed)
		allow := strings.Join(allowed, ", ")
		rt.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			WriteError(w, r, rt.log, apperr.New(apperr.CodeMethodNotAllowed, "%s is not allowed here; use %s", r.Method, allow))
		})
	}
	if _, ok := rt.methods["/"]; !ok {
		rt.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			WriteError(w, r, rt.log, apperr.New(apperr.CodeRouteNotFound, "no route for %s %s", r.Method, r.URL.Path))
		})
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rt.mux.ServeHTTP(w, r)
		request.From(r.Context()).SetRoute(r.Pattern)
	})
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

type bodyKey struct{}

// Body returns the raw body read by the authentication middleware.
func Body(ctx context.Context) []byte {
	b, _ := ctx.Value(bodyKey{}).([]byte)
	return b
}

// PartnerHandler is a handler for an authenticated partner.
type PartnerHandler func(w http.ResponseWriter, r *http.Request, p *auth.PartnerPrincipal) error

// Partner wraps h with partner authentication over the raw body.
func (a *API) Partner(h PartnerHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := ReadBody(r, bodyLimit(r.Context(), a.MaxBodyBytes))
		if err != nil {
			WriteError(w, r, a.Log, err)
			return
		}
		p, err := a.PartnerAuth.AuthenticateHMAC(r.Context(), auth.Request{
			Method: r.Method, PathQuery: r.URL.RequestURI(), Body: body, Header: r.Header,
		})
		if err != nil {
			WriteError(w, r, a.Log, err)
			return
		}
		request.From(r.Context()).SetPartner(p.Partner.ID.String())
		ctx := context.WithValue(auth.WithPartner(r.Context(), p), bodyKey{}, body)
		if err := h(w, r.WithContext(ctx), p); err != nil {
			WriteError(w, r, a.Log, err)
		}
	})
}

// ConsumerHandler is a handler for an authenticated user.
type ConsumerHandler func(w http.ResponseWriter, r *http.Request, c *auth.ConsumerPrincipal) error

// Consumer wraps h with consumer token authentication.
func (a *API) Consumer(h ConsumerHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := a.AuthenticateConsumer(r)
		if err != nil {
			WriteError(w, r, a.Log, err)
			return
		}
		if err := h(w, r.WithContext(auth.WithConsumer(r.Context(), c, nil)), c); err != nil {
			WriteError(w, r, a.Log, err)
		}
	})
}

// AuthenticateConsumer verifies the request's consumer token.
func (a *API) AuthenticateConsumer(r *http.Request) (*auth.ConsumerPrincipal, error) {
	tok, err := auth.TokenFromHeaders(r.Header)
	if err != nil {
		return nil, err
	}
	c, err := a.ConsumerAuth.Authenticate(r.Context(), tok, r.Header.Get(auth.HeaderPartnerSlug))
	if err != nil {
		return nil, err
	}
	request.From(r.Context()).SetPartner(c.Partner.ID.String())
	return c, nil
}

// Register mounts the REST routes.
func (a *API) Register(rt *Router) {
	rt.Handle(http.MethodPost, "/integrations/users", a.PartnerWrite(a.upsertUser))
	rt.Handle(http.MethodGet, "/integrations/users/{externalUserId}", a.Partner(a.getUser))
	rt.Handle(http.MethodDelete, "/integrations/users/{externalUserId}", a.PartnerWrite(a.deleteUser))
	rt.Handle(http.MethodPost, "/integrations/users/{externalUserId}/adjustments", a.PartnerWrite(a.adjust))
	rt.Handle(http.MethodPost, "/integrations/actions", a.PartnerWrite(a.earn))
	rt.Handle(http.MethodPut, "/integrations/earning-rules/{code}", a.PartnerWrite(a.putRule))
	rt.Handle(http.MethodGet, "/integrations/earning-rules", a.Partner(a.listRules))
	rt.Handle(http.MethodDelete, "/integrations/earning-rules/{code}", a.PartnerWrite(a.deleteRule))
	rt.Handle(http.MethodGet, "/me", a.Consumer(a.me))
	a.registerCatalog(rt)
}
