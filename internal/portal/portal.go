// Package portal is the partner portal at /portal (issue 16): a thin
// transport of server-rendered pages over the same domain services as the
// REST API and the CLI. It holds no business rule: accounts, sessions and
// roles are internal/account's, API credentials internal/partner's, the
// audit log internal/audit's.
//
// Security, for every page:
//   - sessions are server-side (account.Service), the cookie holds only a
//     random token, HttpOnly, SameSite=Lax, Secure (and __Host- prefixed)
//     outside development;
//   - every state change is a POST carrying a CSRF token: the session's own
//     once signed in, a double-submit cookie on the sign-in and activation
//     forms; a missing or wrong token answers 403 and changes nothing.
//     net/http's CrossOriginProtection refuses cross-origin POSTs first;
//   - every handler checks the account's permission server-side; hiding a
//     button is only a courtesy;
//   - every query is scoped by the signed-in account's partner id;
//   - strict headers like the webview's (no inline script or style, no
//     framing, no referrer), Cache-Control: no-store.
package portal

import (
	"context"
	"crypto/subtle"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/account"
	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/audit"
	"github.com/perkshq/perks/internal/auth"
	"github.com/perkshq/perks/internal/bulk"
	"github.com/perkshq/perks/internal/credential"
	"github.com/perkshq/perks/internal/export"
	"github.com/perkshq/perks/internal/ledger"
	"github.com/perkshq/perks/internal/partner"
	"github.com/perkshq/perks/internal/ratelimit"
	"github.com/perkshq/perks/internal/user"
	"github.com/perkshq/perks/internal/voucher"
	"github.com/perkshq/perks/internal/webhook"
)

//go:embed templates assets
var files embed.FS

// Path is where the portal is mounted.
const Path = "/portal"

// Mailer delivers activation links when SMTP is configured. Without one,
// the link is shown to whoever invited (and printed by `perks portal
// invite`).
type Mailer interface {
	SendActivation(ctx context.Context, to, link string, expires time.Time) error
}

// Portal serves the partner portal.
type Portal struct {
	DB       bun.IDB
	Accounts *account.Service
	Audit    *audit.Log
	Partners *partner.Service
	Log      *slog.Logger
	// BaseURL prefixes activation links (PERKS_PUBLIC_BASE_URL).
	BaseURL string
	// Secure marks cookies Secure with the __Host- prefix (off only in
	// development over plain http).
	Secure bool
	Mailer Mailer
	// Now is the clock (the Overview's default period ends today in the
	// partner's time zone); nil is the wall clock.
	Now func() time.Time
	// Limiter and SignInLimit rate-limit sign-in and activation attempts
	// per client address (on top of the per-account lockout).
	Limiter     *ratelimit.Limiter
	SignInLimit ratelimit.Limit
	// CMS serves the Catalog and content pages (cms.go).
	CMS *CMS
	// Credentials, ConsumerAuth and Webhooks serve the API access and
	// Consumer authentication pages (credentials.go).
	Credentials  *credential.Service
	ConsumerAuth *auth.ConsumerAuthenticator
	Webhooks     *webhook.Service

	// The services of the Users, Webhooks and Exports & jobs pages
	// (users.go, webhooks.go, exports.go): the ones the REST API calls.
	Users    *user.Service
	Ledger   *ledger.Service
	Vouchers *voucher.Service
	Export   *export.Service
	Bulk     *bulk.Service
}

// DefaultSignInLimit is the per-address sign-in rate.
var DefaultSignInLimit = ratelimit.Limit{PerMinute: 10, Burst: 10}

func (p *Portal) sessionCookie() string {
	if p.Secure {
		return "__Host-perks_portal"
	}
	return "perks_portal"
}

func (p *Portal) csrfCookie() string {
	if p.Secure {
		return "__Host-perks_portal_csrf"
	}
	return "perks_portal_csrf"
}

// CSP is the portal's Content-Security-Policy: the webview's, with forms
// posting to this origin allowed.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; " +
	"frame-ancestors 'none'; require-trusted-types-for 'script'; trusted-types 'none'"

func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", CSP)
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=()")
	h.Set("Cache-Control", "no-store")
}

// Register mounts the portal on mux.
func (p *Portal) Register(mux *http.ServeMux) {
	if p.Log == nil {
		p.Log = slog.New(slog.DiscardHandler)
	}
	if p.Limiter == nil {
		p.Limiter = &ratelimit.Limiter{Now: time.Now}
	}
	if p.SignInLimit == (ratelimit.Limit{}) {
		p.SignInLimit = DefaultSignInLimit
	}
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.fail(w, r, nil, http.StatusForbidden, "This form was sent from another site and was refused.")
	}))
	h := func(pattern string, fn http.HandlerFunc) { mux.Handle(pattern, cop.Handler(fn)) }

	h("GET "+Path, p.authed(account.PermView, p.overview))
	h("GET "+Path+"/{$}", p.authed(account.PermView, p.overview))
	h("GET "+Path+"/sign-in", p.signInPage)
	h("POST "+Path+"/sign-in", p.signIn)
	h("GET "+Path+"/activate", p.activatePage)
	h("POST "+Path+"/activate", p.activate)
	h("POST "+Path+"/activate/resend", p.resendLink)
	h("POST "+Path+"/sign-out", p.authed("", p.signOut))
	h("POST "+Path+"/sign-out-everywhere", p.authed("", p.signOutEverywhere))
	h("GET "+Path+"/team", p.authed(account.PermTeam, p.team))
	h("POST "+Path+"/team/invite", p.authed(account.PermTeam, p.invite))
	h("POST "+Path+"/team/{id}/role", p.authed(account.PermTeam, p.setRole))
	h("POST "+Path+"/team/{id}/remove", p.authed(account.PermTeam, p.remove))
	h("GET "+Path+"/audit", p.authed(account.PermAudit, p.auditPage))
	h("GET "+Path+"/audit.csv", p.authed(account.PermAudit, p.auditCSV))
	h("GET "+Path+"/api-access", p.authed(account.PermView, p.apiAccess))
	h("POST "+Path+"/api-access", p.authed(account.PermCredentials, p.createCredential))
	h("POST "+Path+"/api-access/{id}/enable", p.authed(account.PermCredentials, p.enableCredential(true)))
	h("POST "+Path+"/api-access/{id}/disable", p.authed(account.PermCredentials, p.enableCredential(false)))
	h("POST "+Path+"/api-access/{id}/rotate", p.authed(account.PermCredentials, p.rotateCredential))
	h("GET "+Path+"/assets/{file}", p.asset)
	p.registerCMS(h)
	p.registerSandbox(h)
	p.registerCredentials(h)
	p.registerUsers(h)
	p.registerWebhooks(h)
	p.registerExports(h)
}

// signedIn is the request's account, its partner and session.
type signedIn struct {
	Session *account.Session
	Account *account.Account
	Partner *partner.Partner
	token   string
}

type ctxKey struct{}

func current(r *http.Request) *signedIn { s, _ := r.Context().Value(ctxKey{}).(*signedIn); return s }

// authed loads the session, checks the CSRF token of a POST and the
// permission, then runs fn. Without a session, GETs go to sign-in and
// POSTs answer 401. An empty perm only needs a session.
func (p *Portal) authed(perm account.Permission, fn http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var tok string
		if c, err := r.Cookie(p.sessionCookie()); err == nil {
			tok = c.Value
		}
		sess, acc, err := p.Accounts.Session(r.Context(), p.DB, tok)
		if err != nil {
			p.fail(w, r, err, 0, "")
			return
		}
		if sess == nil || acc.Realm != account.RealmPartner {
			if r.Method == http.MethodGet {
				securityHeaders(w.Header())
				http.Redirect(w, r, Path+"/sign-in", http.StatusSeeOther)
				return
			}
			p.fail(w, r, nil, http.StatusUnauthorized, "Your session has ended. Sign in again.")
			return
		}
		if r.Method == http.MethodPost {
			if tooLarge(r) {
				p.fail(w, r, nil, http.StatusRequestEntityTooLarge, "This form is larger than the portal accepts. Send a smaller file (split it) and try again.")
				return
			}
			got := r.PostFormValue("csrf")
			if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(sess.CSRFToken)) != 1 {
				p.fail(w, r, nil, http.StatusForbidden, "This form has expired or did not come from the portal. Reload the page and try again.")
				return
			}
		}
		pt, err := p.Partners.ByID(r.Context(), p.DB, acc.Scope())
		if err == nil && sess.Sandbox {
			pt, err = p.sessionSandbox(r.Context(), tok, pt)
		}
		if err != nil {
			p.fail(w, r, err, 0, "")
			return
		}
		si := &signedIn{Session: sess, Account: acc, Partner: pt, token: tok}
		r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, si))
		if perm != "" && !acc.Can(perm) {
			p.fail(w, r, nil, http.StatusForbidden, "Your role ("+acc.Role+") may not do this. Ask an owner.")
			return
		}
		fn(w, r)
	}
}

// view is what every page template gets.
type view struct {
	Title  string
	Nav    string
	Me     *signedIn
	CSRF   string
	Error  string
	Notice string
	Data   any
}

var funcs = template.FuncMap{
	"can": func(s *signedIn, perm string) bool { return s != nil && s.Account.Can(account.Permission(perm)) },
	"time": func(t any) string {
		switch v := t.(type) {
		case time.Time:
			return v.UTC().Format("2006-01-02 15:04 UTC")
		case *time.Time:
			if v == nil {
				return "never"
			}
			return v.UTC().Format("2006-01-02 15:04 UTC")
		}
		return ""
	},
	"roles": func() []string { return account.Roles(account.RealmPartner) },
}

var pages = map[string]*template.Template{}

func init() {
	for _, name := range []string{"sign-in", "activate", "overview", "team", "audit", "api-access", "message", "link-expired"} {
		pages[name] = template.Must(template.New("layout.html").Funcs(funcs).ParseFS(files, "templates/layout.html", "templates/"+name+".html"))
	}
}

func (p *Portal) render(w http.ResponseWriter, r *http.Request, status int, page string, v *view) {
	if v.Me == nil {
		v.Me = current(r)
	}
	if v.Me != nil && v.CSRF == "" {
		v.CSRF = v.Me.Session.CSRFToken
	}
	WriteHTML(w, r, p.Log, "portal", page, pages[page], status, v)
}

// fail renders an error page: err's code and message when it is an
// apperr.Error, a generic 500 (logged without details a user typed)
// otherwise; or status and msg when err is nil.
func (p *Portal) fail(w http.ResponseWriter, r *http.Request, err error, status int, msg string) {
	status, msg = Failure(r, p.Log, "portal", err, status, msg)
	p.render(w, r, status, "message", &view{Title: http.StatusText(status), Error: msg})
}

// clientIP is the address sign-in attempts are counted under.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (p *Portal) limited(w http.ResponseWriter, r *http.Request) bool {
	res := p.Limiter.Allow("portal-sign-in:"+clientIP(r), p.SignInLimit)
	if res.Allowed {
		return false
	}
	w.Header().Set("Retry-After", fmt.Sprint(int(res.RetryAfter.Seconds())+1))
	p.fail(w, r, nil, http.StatusTooManyRequests, "Too many attempts from your address. Wait a minute and try again.")
	return true
}

// preAuthCSRF returns the double-submit token of the sign-in and
// activation forms, setting its cookie when the browser has none.
func (p *Portal) preAuthCSRF(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(p.csrfCookie()); err == nil && len(c.Value) >= 32 && len(c.Value) <= 64 {
		return c.Value
	}
	tok := account.NewToken()
	http.SetCookie(w, &http.Cookie{Name: p.csrfCookie(), Value: tok, Path: "/", HttpOnly: true, Secure: p.Secure, SameSite: http.SameSiteStrictMode})
	return tok
}

// tooLarge parses the form and reports whether its body passed the
// route's limit (limitBody), so an oversized upload is told so rather than
// refused as a form without its CSRF token.
func tooLarge(r *http.Request) bool {
	var err error
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
		err = r.ParseMultipartForm(1 << 20)
	} else {
		err = r.ParseForm()
	}
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}

// checkPreAuthCSRF reports whether the form's token matches the cookie.
func (p *Portal) checkPreAuthCSRF(r *http.Request) bool {
	c, err := r.Cookie(p.csrfCookie())
	got := r.PostFormValue("csrf")
	return err == nil && got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(c.Value)) == 1
}

func (p *Portal) setSession(w http.ResponseWriter, s *account.Session) {
	_, abs := p.Accounts.Timeouts()
	http.SetCookie(w, &http.Cookie{Name: p.sessionCookie(), Value: s.Token, Path: "/", HttpOnly: true, Secure: p.Secure,
		SameSite: http.SameSiteLaxMode, MaxAge: int(abs.Seconds())})
}

func (p *Portal) clearSession(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: p.sessionCookie(), Value: "", Path: "/", HttpOnly: true, Secure: p.Secure, SameSite: http.SameSiteLaxMode, MaxAge: -1})
}

func (p *Portal) asset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	b, err := files.ReadFile("assets/" + name)
	if err != nil || strings.Contains(name, "/") {
		p.fail(w, r, nil, http.StatusNotFound, "Not found.")
		return
	}
	securityHeaders(w.Header())
	w.Header().Set("Cache-Control", "no-cache")
	switch {
	case strings.HasSuffix(name, ".css"):
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
	case strings.HasSuffix(name, ".js"):
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	default:
		w.Header().Set("Content-Type", "application/octet-stream")
	}
	_, _ = w.Write(b)
}

// actor is the signed-in account as the audit log names it.
func (s *signedIn) actor() audit.Actor { return s.Account.Actor() }

// parseID reads the {id} path value.
func parseID(r *http.Request) (uuid.UUID, error) {
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		return uuid.Nil, apperr.New(apperr.CodeNotFound, "not found")
	}
	return id, nil
}
