// Package merchantportal is the merchant portal at /merchant (issue 17,
// seed 004): a merchant's admin and till operators sign in with the
// accounts of internal/account (realm merchant: activation link, password
// and TOTP, server-side sessions, lockout) through portal.Kit, the same web
// glue as the partner portal, and redeem vouchers at the till with the
// customer's one-time code, read the redemption history, manage the team
// and the server-to-server API credentials. It is a thin transport: the
// rules are internal/voucher's (till look-up, redemption, history),
// internal/merchant's (partners served, credentials) and internal/account's.
//
// A merchant account belongs to a merchant id. The same merchant id may be
// a merchant of several partners (see merchant.Served); the portal shows
// each partner's vouchers only where that partner's gifts list it.
//
// Roles (account.RealmMerchant): admin (team, credentials, every
// operator's redemptions, redeem), operator_redeem (till with redemption,
// own history), operator (till look-up and validation only, own history).
// Every handler checks the permission server-side.
package merchantportal

import (
	"context"
	"embed"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/account"
	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/audit"
	"github.com/perkshq/perks/internal/merchant"
	"github.com/perkshq/perks/internal/partner"
	"github.com/perkshq/perks/internal/portal"
	"github.com/perkshq/perks/internal/ratelimit"
	"github.com/perkshq/perks/internal/voucher"
)

//go:embed templates assets
var files embed.FS

// Path is where the merchant portal is mounted. The merchant REST routes
// (GET /merchant/vouchers/{code}, POST /merchant/redemptions) live next to
// it and are not shadowed: no portal route uses those paths.
const Path = "/merchant"

// Portal serves the merchant portal.
type Portal struct {
	DB        bun.IDB
	Accounts  *account.Service
	Audit     *audit.Log
	Merchants *merchant.Service
	Vouchers  *voucher.Service
	Partners  *partner.Service
	Log       *slog.Logger
	// BaseURL prefixes activation links (PERKS_PUBLIC_BASE_URL).
	BaseURL string
	// Secure marks cookies Secure with the __Host- prefix.
	Secure bool
	Mailer portal.Mailer
	Now    func() time.Time
	// Limiter and SignInLimit rate-limit sign-in and activation attempts
	// per client address (portal.DefaultSignInLimit when zero).
	Limiter     *ratelimit.Limiter
	SignInLimit ratelimit.Limit

	kit *portal.Kit
}

func (p *Portal) now() time.Time {
	if p.Now == nil {
		return time.Now().UTC()
	}
	return p.Now().UTC()
}

// Register mounts the portal on mux.
func (p *Portal) Register(mux *http.ServeMux) {
	if p.Log == nil {
		p.Log = slog.New(slog.DiscardHandler)
	}
	p.kit = &portal.Kit{DB: p.DB, Accounts: p.Accounts, Realm: account.RealmMerchant, Name: "merchant", Secure: p.Secure,
		Limiter: p.Limiter, SignInLimit: p.SignInLimit}
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.fail(w, r, nil, http.StatusForbidden, "This form was sent from another site and was refused.")
	}))
	h := func(pattern string, fn http.HandlerFunc) { mux.Handle(pattern, cop.Handler(fn)) }

	h("GET "+Path, p.authed(account.PermView, p.till))
	h("GET "+Path+"/{$}", p.authed(account.PermView, p.till))
	h("POST "+Path+"/till/redeem", p.authed(account.PermRedeem, p.redeem))
	h("GET "+Path+"/sign-in", p.signInPage)
	h("POST "+Path+"/sign-in", p.signIn)
	h("GET "+Path+"/activate", p.activatePage)
	h("POST "+Path+"/activate", p.activate)
	h("POST "+Path+"/sign-out", p.authed("", p.signOut))
	h("GET "+Path+"/history", p.authed(account.PermView, p.history))
	h("GET "+Path+"/history.csv", p.authed(account.PermView, p.historyCSV))
	h("GET "+Path+"/team", p.authed(account.PermTeam, p.team))
	h("POST "+Path+"/team/invite", p.authed(account.PermTeam, p.invite))
	h("POST "+Path+"/team/{id}/role", p.authed(account.PermTeam, p.setRole))
	h("POST "+Path+"/team/{id}/remove", p.authed(account.PermTeam, p.remove))
	h("GET "+Path+"/credentials", p.authed(account.PermCredentials, p.credentials))
	h("POST "+Path+"/credentials", p.authed(account.PermCredentials, p.createCredential))
	h("POST "+Path+"/credentials/{id}/rotate", p.authed(account.PermCredentials, p.rotateCredential))
	h("POST "+Path+"/credentials/{id}/disable", p.authed(account.PermCredentials, p.disableCredential))
	h("GET "+Path+"/audit", p.authed(account.PermAudit, p.auditPage))
	h("GET "+Path+"/audit.csv", p.authed(account.PermAudit, p.auditCSV))
	h("GET "+Path+"/assets/{file}", p.asset)
}

// signedIn is the request's account, its merchant's partners and session.
type signedIn struct {
	Session *account.Session
	Account *account.Account
	// Served are the partners the merchant serves; Name is the merchant's.
	Served []merchant.Served
	Name   string
	token  string
}

// MerchantID is the account's merchant.
func (s *signedIn) MerchantID() uuid.UUID { return s.Account.Scope() }

// served finds a partner the merchant serves.
func (s *signedIn) served(partnerID uuid.UUID) *merchant.Served {
	for i := range s.Served {
		if s.Served[i].PartnerID == partnerID {
			return &s.Served[i]
		}
	}
	return nil
}

type ctxKey struct{}

func current(r *http.Request) *signedIn { s, _ := r.Context().Value(ctxKey{}).(*signedIn); return s }

// authed loads the session, checks a POST's CSRF token and the permission,
// then runs fn. Without a session GETs go to sign-in and POSTs answer 401.
func (p *Portal) authed(perm account.Permission, fn http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sess, acc, err := p.kit.Session(r)
		if err != nil {
			p.fail(w, r, err, 0, "")
			return
		}
		if sess == nil {
			if r.Method == http.MethodGet {
				portal.SecurityHeaders(w.Header())
				http.Redirect(w, r, Path+"/sign-in", http.StatusSeeOther)
				return
			}
			p.fail(w, r, nil, http.StatusUnauthorized, "Your session has ended. Sign in again.")
			return
		}
		if r.Method == http.MethodPost && !p.kit.CheckCSRF(r, sess) {
			p.fail(w, r, nil, http.StatusForbidden, "This form has expired or did not come from the portal. Reload the page and try again.")
			return
		}
		served, err := p.Merchants.Served(r.Context(), p.DB, acc.Scope())
		if err != nil {
			p.fail(w, r, err, 0, "")
			return
		}
		si := &signedIn{Session: sess, Account: acc, Served: served, token: p.kit.SessionToken(r)}
		if len(served) > 0 {
			si.Name = served[0].Name
		}
		r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, si))
		if perm != "" && !acc.Can(perm) {
			p.fail(w, r, nil, http.StatusForbidden, "Your role ("+roleLabel(acc.Role)+") may not do this. Ask your merchant admin.")
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

// roleLabel names a merchant role for people.
func roleLabel(role string) string {
	switch role {
	case account.RoleMerchantAdmin:
		return "merchant admin"
	case account.RoleOperatorRedeem:
		return "operator, redeems"
	case account.RoleOperator:
		return "operator, look-up only"
	}
	return role
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
	"roles":     func() []string { return account.Roles(account.RealmMerchant) },
	"roleLabel": roleLabel,
	"short":     func(id uuid.UUID) string { return id.String()[:8] },
	"deref": func(s *string) string {
		if s == nil {
			return ""
		}
		return *s
	},
}

var pages = map[string]*template.Template{}

func init() {
	for _, name := range []string{"sign-in", "activate", "message", "till", "history", "team", "credentials", "audit"} {
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
	portal.WriteHTML(w, r, p.Log, "merchant portal", page, pages[page], status, v)
}

// fail renders an error page: err's code and message when it is an
// apperr.Error, a generic 500 (logged without what a user typed)
// otherwise; or status and msg when err is nil.
func (p *Portal) fail(w http.ResponseWriter, r *http.Request, err error, status int, msg string) {
	status, msg = portal.Failure(r, p.Log, "merchant portal", err, status, msg)
	p.render(w, r, status, "message", &view{Title: http.StatusText(status), Error: msg})
}

func (p *Portal) asset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	b, err := files.ReadFile("assets/" + name)
	if err != nil || strings.Contains(name, "/") {
		p.fail(w, r, nil, http.StatusNotFound, "Not found.")
		return
	}
	portal.SecurityHeaders(w.Header())
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	_, _ = w.Write(b)
}

// ActivationLink is the link a merchant invitation sends.
func ActivationLink(base, token string) string {
	return strings.TrimRight(base, "/") + Path + "/activate?token=" + url.QueryEscape(token)
}

// parseID reads the {id} path value.
func parseID(r *http.Request) (uuid.UUID, error) {
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		return uuid.Nil, apperr.New(apperr.CodeNotFound, "not found")
	}
	return id, nil
}

// record writes one audit entry of the signed-in account's merchant.
func (p *Portal) record(ctx context.Context, db bun.IDB, me *signedIn, action, target string, before, after any) error {
	_, err := p.Audit.RecordTx(ctx, db, audit.Change{Realm: account.RealmMerchant, RealmID: me.MerchantID(), Actor: me.Account.Actor(),
		Action: action, Target: target, Before: before, After: after})
	return err
}
