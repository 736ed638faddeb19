package rest

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/audit"
	"github.com/perkshq/perks/internal/auth"
	"github.com/perkshq/perks/internal/bulk"
	"github.com/perkshq/perks/internal/campaign"
	"github.com/perkshq/perks/internal/catalog"
	"github.com/perkshq/perks/internal/content"
	"github.com/perkshq/perks/internal/credential"
	"github.com/perkshq/perks/internal/database"
	"github.com/perkshq/perks/internal/earning"
	"github.com/perkshq/perks/internal/export"
	"github.com/perkshq/perks/internal/ledger"
	"github.com/perkshq/perks/internal/merchant"
	"github.com/perkshq/perks/internal/partner"
	"github.com/perkshq/perks/internal/program"
	"github.com/perkshq/perks/internal/ranking"
	"github.com/perkshq/perks/internal/referral"
	"github.com/perkshq/perks/internal/request"
	"github.com/perkshq/perks/internal/tier"
	"github.com/perkshq/perks/internal/user"
	"github.com/perkshq/perks/internal/voucher"
	"github.com/perkshq/perks/internal/webhook"
)

// API holds what the REST handlers need.
type API struct {
	DB *database.DB
	// ReadDB serves the reads that tolerate a standby's lag (user lists,
	// ranking); nil means DB.
	ReadDB       *database.DB
	Partners     *partner.Service
	Users        *user.Service
	Ledger       *ledger.Service
	Earning      *earning.Service
	Program      *program.Service
	Campaigns    *campaign.Service
	Tiers        *tier.Service
	Referrals    *referral.Service
	Bulk         *bulk.Service
	Ranking      *ranking.Service
	Export       *export.Service
	Content      *content.Service
	Webhooks     *webhook.Service
	Catalog      *catalog.Service
	Vouchers     *voucher.Service
	Merchants    *merchant.Service
	PartnerAuth  *auth.PartnerAuthenticator
	ConsumerAuth *auth.ConsumerAuthenticator
	MaxBodyBytes int64
	// MaxUploadBytes is the body limit of voucher code uploads.
	MaxUploadBytes int64
	Log            *slog.Logger
	Now            func() time.Time
	// RateLimits applies per-partner limits; nil disables them.
	RateLimits *RateLimits
	// TrustedProxies are the proxies whose X-Forwarded-For is believed.
	TrustedProxies []*net.IPNet
	// BackendTokenTTL is the lifetime of POST /auth/token's tokens.
	BackendTokenTTL time.Duration
	// Audit, when set, records every successful partner write (audit.go).
	Audit *audit.Log
	// Credentials manages credentials and consumer keys (credentials.go).
	Credentials *credential.Service
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

// Routes lists every registered "METHOD /path", sorted.
func (rt *Router) Routes() []string {
	var out []string
	for path, methods := range rt.methods {
		for _, m := range methods {
			out = append(out, m+" "+path)
		}
	}
	sort.Strings(out)
	return out
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
		notAllowed := func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			WriteError(w, r, rt.log, apperr.New(apperr.CodeMethodNotAllowed, "%s is not allowed here; use %s", r.Method, allow))
		}
		// One pattern per other method: a method-less pattern would
		// conflict with wildcard routes of other paths.
		for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions} {
			if !contains(allowed, m) {
				rt.mux.HandleFunc(m+" "+path, notAllowed)
			}
		}
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

// Partner wraps h with partner authentication over the raw body: the
// scheme follows the headers (HMAC, Ed25519 or request JWT, see
// auth.PartnerAuthenticator.Authenticate), then the partner's controls
// (access switch, schemes, origins, replay cache) and its rate limit.
func (a *API) Partner(h PartnerHandler) http.Handler { return a.partnerLimit(a.MaxBodyBytes, false, h) }

// partnerLimit is Partner with a route-specific body limit. With
// deferReplay the handler must remember a write's signature (PartnerWrite
// does, inside its transaction, after the idempotency layer had its chance
// to answer a retry); reads are never deferred, and never refused as
// replays.
func (a *API) partnerLimit(limit int64, deferReplay bool, h PartnerHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := ReadBody(r, limit)
		if err != nil {
			WriteError(w, r, a.Log, err)
			return
		}
		ar := a.authRequest(r, body)
		ar.DeferReplay = deferReplay
		p, err := a.PartnerAuth.Authenticate(r.Context(), ar)
		if err != nil {
			WriteError(w, r, a.Log, err)
			return
		}
		request.From(r.Context()).SetPartner(p.Partner.ID.String())
		MarkEnvironment(w, p.Partner)
		if err := a.RateLimits.Take(r.Context(), w, p.Partner, false); err != nil {
			WriteError(w, r, a.Log, err)
			return
		}
		ctx := context.WithValue(auth.WithPartner(r.Context(), p), bodyKey{}, body)
		if err := h(w, r.WithContext(ctx), p); err != nil {
			WriteError(w, r, a.Log, err)
		}
	})
}

func (a *API) authRequest(r *http.Request, body []byte) auth.Request {
	return auth.Request{
		Method: r.Method, PathQuery: r.URL.RequestURI(), Body: body, Header: r.Header,
		ClientIP: ClientIP(r, a.TrustedProxies),
	}
}

type tokenResponse struct {
	Token     string `json:"token"`
	ExpiresIn int    `json:"expiresIn"`
}

// errTokenRequestReplayed answers a token request received before. The
// generic SIGNATURE_REPLAYED detail advises an Idempotency-Key, which this
// route does not honour on purpose (docs/auth.md, "Replays"): answering a
// resent token request again would hand a live back-end token to anyone who
// saw the request JWT (a log, a proxy), and storing the token to replay it
// would keep a credential at rest. A token request serves once; a client
// whose request timed out signs a new one (an earlier token, if it was
// issued, just expires unused).
var errTokenRequestReplayed = apperr.New(apperr.CodeSignatureReplayed,
	"this token request was already received; a request JWT for POST /auth/token buys one back-end token and is never answered twice (Idempotency-Key does not apply here): sign a new request JWT (a fresh iat, or a new jti) to get another token")

// authToken is seed 001's auth/token: a request JWT with an empty sub buys
// an opaque back-end token for the request-JWT scheme. It is a write whose
// request JWT serves once, with or without htm/htu or jti (see
// errTokenRequestReplayed).
func (a *API) authToken(w http.ResponseWriter, r *http.Request) {
	err := func() error {
		body, err := ReadBody(r, a.MaxBodyBytes)
		if err != nil {
			return err
		}
		p, err := a.PartnerAuth.AuthenticateTokenRequest(r.Context(), a.authRequest(r, body))
		if apperr.Is(err, apperr.CodeSignatureReplayed) {
			return errTokenRequestReplayed
		}
		if err != nil {
			return err
		}
		request.From(r.Context()).SetPartner(p.Partner.ID.String())
		MarkEnvironment(w, p.Partner)
		if err := a.RateLimits.Take(r.Context(), w, p.Partner, false); err != nil {
			return err
		}
		tok, _, err := a.Partners.IssueBackendToken(r.Context(), a.DB.Bun, p.Partner.ID, p.CredentialID, a.BackendTokenTTL)
		if err != nil {
			return err
		}
		w.Header().Set("Cache-Control", "no-store")
		WriteJSON(w, http.StatusOK, tokenResponse{Token: tok, ExpiresIn: int(a.BackendTokenTTL.Seconds())})
		return nil
	}()
	if err != nil {
		WriteError(w, r, a.Log, err)
	}
}

// ConsumerHandler is a handler for an authenticated user.
type ConsumerHandler func(w http.ResponseWriter, r *http.Request, c *auth.ConsumerPrincipal) error

// Consumer wraps h with consumer token authentication.
func (a *API) Consumer(h ConsumerHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := a.AuthenticateConsumer(w, r)
		if err != nil {
			writeError(w, r, a.Log, err, true)
			return
		}
		if err := h(w, r.WithContext(auth.WithConsumer(r.Context(), c, nil)), c); err != nil {
			WriteError(w, r, a.Log, err)
		}
	})
}

// AuthenticateConsumer verifies the request's consumer token and counts the
// call against the partner's consumer rate limit (writing the RateLimit-*
// headers to w). Allowed origins do not apply: consumer calls come from
// users' devices.
func (a *API) AuthenticateConsumer(w http.ResponseWriter, r *http.Request) (*auth.ConsumerPrincipal, error) {
	tok, err := auth.TokenFromHeaders(r.Header)
	if err != nil {
		return nil, err
	}
	c, err := a.ConsumerAuth.Authenticate(r.Context(), tok, r.Header.Get(auth.HeaderPartnerSlug))
	if err != nil {
		return nil, err
	}
	request.From(r.Context()).SetPartner(c.Partner.ID.String())
	MarkEnvironment(w, c.Partner)
	if err := a.RateLimits.Take(r.Context(), w, c.Partner, true); err != nil {
		return nil, err
	}
	return c, nil
}

// Register mounts the REST routes.
func (a *API) Register(rt *Router) {
	rt.Handle(http.MethodPost, "/integrations/users", a.PartnerWrite(a.upsertUser))
	rt.Handle(http.MethodGet, "/integrations/users/{externalUserId}", a.Partner(a.getUser))
	rt.Handle(http.MethodDelete, "/integrations/users/{externalUserId}", a.PartnerWrite(a.deleteUser))
	rt.Handle(http.MethodPost, "/integrations/users/{externalUserId}/logout", a.PartnerWrite(a.logoutUser))
	rt.Handle(http.MethodPost, "/auth/token", http.HandlerFunc(a.authToken))
	rt.Handle(http.MethodPost, "/integrations/users/{externalUserId}/adjustments", a.PartnerWrite(a.adjust))
	rt.Handle(http.MethodPost, "/integrations/actions", a.earnRoute())
	rt.Handle(http.MethodPut, "/integrations/earning-rules/{code}", a.PartnerWrite(a.putRule))
	rt.Handle(http.MethodGet, "/integrations/earning-rules", a.Partner(a.listRules))
	rt.Handle(http.MethodDelete, "/integrations/earning-rules/{code}", a.PartnerWrite(a.deleteRule))
	rt.Handle(http.MethodGet, "/integrations/program", a.Partner(a.getProgram))
	rt.Handle(http.MethodPut, "/integrations/program", a.PartnerWrite(a.putProgram))
	rt.Handle(http.MethodGet, "/integrations/referral-policy", a.Partner(a.getReferralPolicy))
	rt.Handle(http.MethodPut, "/integrations/referral-policy", a.PartnerWrite(a.putReferralPolicy))
	rt.Handle(http.MethodPost, "/integrations/actions/{reference}/reverse", a.PartnerWrite(a.reverse))
	rt.Handle(http.MethodGet, "/integrations/tiers", a.Partner(a.getTiers))
	rt.Handle(http.MethodPut, "/integrations/tiers", a.PartnerWrite(a.putTiers))
	rt.Handle(http.MethodPost, "/integrations/actions/multistore", a.PartnerWriteLimit(multistoreBodyLimit, a.multistore))
	rt.Handle(http.MethodPost, "/integrations/actions/{reference}/confirm", a.PartnerWrite(a.confirmEarn))
	rt.Handle(http.MethodPost, "/integrations/actions/{reference}/cancel", a.PartnerWrite(a.cancelEarn))
	rt.Handle(http.MethodPost, "/integrations/users/multidelete", a.PartnerWriteLimit(multideleteBodyLimit, a.multidelete))
	rt.Handle(http.MethodGet, "/integrations/jobs/{id}", a.Partner(a.getJob))
	rt.Handle(http.MethodGet, "/integrations/users", a.Partner(a.listUsers))
	rt.Handle(http.MethodGet, "/integrations/users/{externalUserId}/ranking", a.Partner(a.userRanking))
	rt.Handle(http.MethodGet, "/integrations/exports/users", a.Partner(a.exportUsers))
	rt.Handle(http.MethodGet, "/integrations/ads", a.Partner(a.listAds))
	rt.Handle(http.MethodPut, "/integrations/ads/{id}", a.PartnerWrite(a.putAd))
	rt.Handle(http.MethodGet, "/integrations/ads/{id}", a.Partner(a.getAd))
	rt.Handle(http.MethodDelete, "/integrations/ads/{id}", a.PartnerWrite(a.deleteAd))
	rt.Handle(http.MethodGet, "/me", a.Consumer(a.me))
	a.registerWebhooks(rt)
	a.registerCatalog(rt)
	a.registerCampaigns(rt)
	a.registerReports(rt)
	a.registerCredentials(rt)
	a.registerSandbox(rt)
	a.registerUserReads(rt)
}

// readDB is the database of the lag-tolerant reads.
func (a *API) readDB() *database.DB {
	if a.ReadDB != nil {
		return a.ReadDB
	}
	return a.DB
}
