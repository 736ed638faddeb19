// Package console is the platform console at /admin (issue 17): the
// operator of a Perks installation (the seeds' "business team") creates
// partners and approves their onboarding, invites their first owner,
// suspends and resumes them, reads their usage; creates merchants, attaches
// them to partners and invites their admin; watches River's queues (River's
// own UI, mounted behind the console's sign-in), webhook failure rates and
// the audit log across partners.
//
// Like the partner portal it is a thin transport over the domain services
// (internal/account for platform admins, sessions, TOTP and lockout,
// internal/partner, internal/merchant, internal/report, internal/audit),
// with the portal's security rules: server-side sessions in a cookie of
// its own (a partner portal session never opens the console: the account
// must be of the platform realm), a CSRF token on every POST, net/http's
// cross-origin protection, strict headers, and every change audited in the
// platform realm with the admin as actor. Platform admins are created with
// `perks admin create` only.
package console

import (
	"context"
	"embed"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/account"
	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/audit"
	"github.com/perkshq/perks/internal/merchant"
	"github.com/perkshq/perks/internal/partner"
	"github.com/perkshq/perks/internal/portal"
	"github.com/perkshq/perks/internal/ratelimit"
)

//go:embed templates assets
var files embed.FS

// Mailer delivers activation links when SMTP is configured; without one the
// console shows the link to the admin who invited.
type Mailer interface {
	SendActivation(ctx context.Context, to, link string, expires time.Time) error
}

// Console serves /admin.
type Console struct {
	DB        bun.IDB
	Accounts  *account.Service
	Audit     *audit.Log
	Partners  *partner.Service
	Merchants *merchant.Service
	Log       *slog.Logger
	// BaseURL prefixes activation links (PERKS_PUBLIC_BASE_URL).
	BaseURL string
	// Secure marks cookies Secure with the __Host- prefix.
	Secure bool
	Mailer Mailer
	// Now is the clock (usage periods end today); nil is the wall clock.
	Now func() time.Time
	// Limiter and SignInLimit rate-limit sign-in and activation per
	// client address (on top of the per-account lockout).
	Limiter     *ratelimit.Limiter
	SignInLimit ratelimit.Limit
	// RiverUI is River's own UI (riverqueue.com/riverui), served under
	// Path+"/riverui/" to signed-in platform admins only; nil hides it.
	RiverUI http.Handler

	kit *portal.Kit
}

func (c *Console) now() time.Time {
	if c.Now == nil {
		return time.Now().UTC()
	}
	return c.Now().UTC()
}

// securityHeaders are the partner portal's strict headers.
func securityHeaders(h http.Header) { portal.SecurityHeaders(h) }

// Register mounts the console on mux.
func (c *Console) Register(mux *http.ServeMux) {
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	// Sessions, CSRF tokens, sign-in limits and headers follow the partner
	// portal's rules (portal.Kit); the cookies are the console's own,
	// scoped to /admin.
	c.kit = &portal.Kit{DB: c.DB, Accounts: c.Accounts, Realm: account.RealmPlatform, Name: "admin", Secure: c.Secure,
		CookiePath: Path, Limiter: c.Limiter, SignInLimit: c.SignInLimit}
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.fail(w, r, nil, http.StatusForbidden, "This form was sent from another site and was refused.")
	}))
	h := func(pattern string, fn http.HandlerFunc) { mux.Handle(pattern, cop.Handler(fn)) }

	h("GET "+Path, c.authed(c.home))
	h("GET "+Path+"/{$}", c.authed(c.home))
	h("GET "+Path+"/sign-in", c.signInPage)
	h("POST "+Path+"/sign-in", c.signIn)
	h("GET "+Path+"/activate", c.activatePage)
	h("POST "+Path+"/activate", c.activate)
	h("POST "+Path+"/sign-out", c.authed(c.signOut))
	h("GET "+Path+"/partners", c.authed(c.partners))
	h("POST "+Path+"/partners", c.authed(c.createPartner))
	h("GET "+Path+"/partners/{slug}", c.authed(c.partnerPage))
	h("POST "+Path+"/partners/{slug}/status", c.authed(c.setPartnerStatus))
	h("POST "+Path+"/partners/{slug}/invite", c.authed(c.inviteOwner))
	h("GET "+Path+"/merchants", c.authed(c.merchants))
	h("POST "+Path+"/merchants", c.authed(c.createMerchant))
	h("POST "+Path+"/merchants/{id}/attach", c.authed(c.attachMerchant))
	h("POST "+Path+"/merchants/{id}/invite", c.authed(c.inviteMerchantAdmin))
	h("GET "+Path+"/health", c.authed(c.health))
	h("GET "+Path+"/audit", c.authed(c.auditPage))
	h("GET "+Path+"/audit.csv", c.authed(c.auditCSV))
	h("GET "+Path+"/assets/{file}", c.asset)
	if c.RiverUI != nil {
		// River's UI is a single-page app with a JSON API of its own
		// (GET, and POST/PATCH/DELETE to retry, cancel or delete jobs): the
		// session is required for every request, and cross-origin writes
		// are refused by cop (the session cookie is SameSite=Lax too).
		mux.Handle(Path+"/riverui/", cop.Handler(c.authed(c.RiverUI.ServeHTTP)))
	}
}

// signedIn is the request's platform admin and session.
type signedIn struct {
	Session *account.Session
	Account *account.Account
	token   string
}

type ctxKey struct{}

func current(r *http.Request) *signedIn { s, _ := r.Context().Value(ctxKey{}).(*signedIn); return s }

func (s *signedIn) actor() audit.Actor { return s.Account.Actor() }

// authed loads the session, which must be a platform admin's, checks the
// CSRF token of a form POST, then runs fn. Without such a session, page
// GETs go to sign-in and everything else answers 401: a partner portal
// or merchant session is no session here. River UI's JSON calls carry no
// form: the cross-origin check and the SameSite cookie guard them.
func (c *Console) authed(fn http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sess, acc, err := c.kit.Session(r)
		if err != nil {
			c.fail(w, r, err, 0, "")
			return
		}
		if sess == nil || !acc.Can(account.PermView) {
			if r.Method == http.MethodGet && !strings.HasPrefix(r.URL.Path, Path+"/riverui/api/") {
				securityHeaders(w.Header())
				http.Redirect(w, r, Path+"/sign-in", http.StatusSeeOther)
				return
			}
			c.fail(w, r, nil, http.StatusUnauthorized, "Sign in to the platform console first.")
			return
		}
		riverUI := strings.HasPrefix(r.URL.Path, Path+"/riverui/")
		if r.Method == http.MethodPost && !riverUI && !c.kit.CheckCSRF(r, sess) {
			c.fail(w, r, nil, http.StatusForbidden, "This form has expired or did not come from the console. Reload the page and try again.")
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, &signedIn{Session: sess, Account: acc, token: c.kit.SessionToken(r)}))
		fn(w, r)
	}
}

// view is what every page template gets.
type view struct {
	Title   string
	Nav     string
	Me      *signedIn
	CSRF    string
	Error   string
	Notice  string
	RiverUI bool
	Data    any
}

var funcs = template.FuncMap{
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
	"percent":      func(f float64) string { return fmt.Sprintf("%.1f%%", f*100) },
	"partnerRoles": func() []string { return account.Roles(account.RealmPartner) },
}

var pages = map[string]*template.Template{}

func init() {
	for _, name := range []string{"sign-in", "activate", "message", "partners", "partner", "merchants", "health", "audit"} {
		pages[name] = template.Must(template.New("layout.html").Funcs(funcs).ParseFS(files, "templates/layout.html", "templates/"+name+".html"))
	}
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, page string, v *view) {
	if v.Me == nil {
		v.Me = current(r)
	}
	if v.Me != nil && v.CSRF == "" {
		v.CSRF = v.Me.Session.CSRFToken
	}
	v.RiverUI = c.RiverUI != nil
	portal.WriteHTML(w, r, c.Log, "console", page, pages[page], status, v)
}

// fail renders an error page: err's code and message when it is an
// apperr.Error, a generic 500 (logged without what a user typed) otherwise;
// or status and msg when err is nil.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, err error, status int, msg string) {
	status, msg = portal.Failure(r, c.Log, "console", err, status, msg)
	c.render(w, r, status, "message", &view{Title: http.StatusText(status), Error: msg})
}

// failed reports whether err is an error the page shows next to its form
// (an apperr other than INTERNAL), with its status.
func failed(err error) (int, string, bool) {
	if e := apperr.As(err); e != nil && e.Code != apperr.CodeInternal {
		return apperr.Lookup(e.Code).Status, e.Message, true
	}
	return 0, "", false
}

func (c *Console) limited(w http.ResponseWriter, r *http.Request) bool {
	if !c.kit.Limited(w, r) {
		return false
	}
	c.fail(w, r, nil, http.StatusTooManyRequests, "Too many attempts from your address. Wait a minute and try again.")
	return true
}

func (c *Console) asset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	b, err := files.ReadFile("assets/" + name)
	if err != nil || strings.Contains(name, "/") {
		c.fail(w, r, nil, http.StatusNotFound, "Not found.")
		return
	}
	securityHeaders(w.Header())
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	_, _ = w.Write(b)
}

// sendLink mails an activation link when a mailer is configured and
// returns the notice and the link to show (empty when mailed).
func (c *Console) sendLink(r *http.Request, inv *account.Invitation, link string) (notice, shown string) {
	until := inv.ExpiresAt.UTC().Format("2006-01-02 15:04 UTC")
	if c.Mailer != nil {
		if err := c.Mailer.SendActivation(r.Context(), inv.Account.Email, link, inv.ExpiresAt); err == nil {
			return "An activation link was sent to " + inv.Account.Email + ".", ""
		}
		c.Log.ErrorContext(r.Context(), "console: sending activation mail failed", "account_id", inv.Account.ID)
		return "The invitation is ready but the mail could not be sent; send this link to " + inv.Account.Email + " yourself (it works once, until " + until + "):", link
	}
	return "Send this activation link to " + inv.Account.Email + " (it works once, until " + until + "):", link
}
