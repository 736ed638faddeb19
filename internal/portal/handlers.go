package portal

import (
	"context"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/account"
	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/audit"
	"github.com/perkshq/perks/internal/report"
)

// --- sign-in, activation, sign-out ---

type signInData struct{ Email string }

func (p *Portal) signInPage(w http.ResponseWriter, r *http.Request) {
	p.render(w, r, http.StatusOK, "sign-in", &view{Title: "Sign in", CSRF: p.preAuthCSRF(w, r)})
}

func (p *Portal) signIn(w http.ResponseWriter, r *http.Request) {
	if !p.checkPreAuthCSRF(r) {
		p.fail(w, r, nil, http.StatusForbidden, "This form has expired or did not come from the portal. Reload the page and try again.")
		return
	}
	if p.limited(w, r) {
		return
	}
	var old string
	if c, err := r.Cookie(p.sessionCookie()); err == nil {
		old = c.Value
	}
	email := r.PostFormValue("email")
	sess, _, err := p.Accounts.SignIn(r.Context(), p.DB, account.RealmPartner, email, r.PostFormValue("password"), r.PostFormValue("code"), old)
	if err != nil {
		if old != "" {
			p.clearSession(w)
		}
		if e := apperr.As(err); e != nil && e.Code == apperr.CodeUnauthenticated {
			p.render(w, r, http.StatusUnauthorized, "sign-in", &view{Title: "Sign in", CSRF: p.preAuthCSRF(w, r), Error: e.Message, Data: signInData{Email: email}})
			return
		}
		p.fail(w, r, err, 0, "")
		return
	}
	p.setSession(w, sess)
	securityHeaders(w.Header())
	http.Redirect(w, r, Path, http.StatusSeeOther)
}

type activateData struct {
	Token  string
	Email  string
	Secret string
	QR     template.URL
}

func (p *Portal) activatePage(w http.ResponseWriter, r *http.Request) {
	tok := r.URL.Query().Get("token")
	a, enr, err := p.Accounts.ActivationOffer(r.Context(), p.DB, tok)
	if apperr.Is(err, apperr.CodeTokenInvalid) {
		p.linkExpired(w, r, "")
		return
	}
	if err != nil {
		p.fail(w, r, err, 0, "")
		return
	}
	p.render(w, r, http.StatusOK, "activate", &view{Title: "Activate your account", CSRF: p.preAuthCSRF(w, r),
		Data: activateData{Token: tok, Email: a.Email, Secret: enr.Secret, QR: template.URL(enr.QRDataURL())}})
}

func (p *Portal) activate(w http.ResponseWriter, r *http.Request) {
	if !p.checkPreAuthCSRF(r) {
		p.fail(w, r, nil, http.StatusForbidden, "This form has expired or did not come from the portal. Reload the page and try again.")
		return
	}
	if p.limited(w, r) {
		return
	}
	tok := r.PostFormValue("token")
	pw := r.PostFormValue("password")
	if pw != r.PostFormValue("password2") {
		p.reActivate(w, r, tok, "The two passwords differ.")
		return
	}
	a, err := p.Accounts.Activate(r.Context(), p.DB, tok, pw, r.PostFormValue("code"))
	if err != nil {
		if e := apperr.As(err); e != nil && e.Code == apperr.CodeInvalidField {
			p.reActivate(w, r, tok, e.Message)
			return
		}
		p.fail(w, r, err, 0, "")
		return
	}
	p.render(w, r, http.StatusOK, "message", &view{Title: "Account activated",
		Notice: "Your account " + a.Email + " is active. Sign in with your password and the code from your authenticator app."})
}

// linkExpired explains a used or expired link and, when mail is
// configured, offers to mail a new one to the invited address.
func (p *Portal) linkExpired(w http.ResponseWriter, r *http.Request, notice string) {
	v := &view{Title: "This link does not work any more", CSRF: p.preAuthCSRF(w, r), Notice: notice, Data: p.Mailer != nil}
	if notice == "" {
		v.Error = "This activation link was used or has expired."
	}
	p.render(w, r, http.StatusUnauthorized, "link-expired", v)
}

// resendLink mails a new activation link to an invited address. The
// answer is the same whether or not the address is invited.
func (p *Portal) resendLink(w http.ResponseWriter, r *http.Request) {
	if !p.checkPreAuthCSRF(r) {
		p.fail(w, r, nil, http.StatusForbidden, "This form has expired or did not come from the portal. Reload the page and try again.")
		return
	}
	if p.limited(w, r) {
		return
	}
	if p.Mailer == nil {
		p.linkExpired(w, r, "")
		return
	}
	var inv *account.Invitation
	err := p.DB.RunInTx(r.Context(), nil, func(ctx context.Context, tx bun.Tx) error {
		var err error
		inv, err = p.Accounts.ReissueTx(ctx, tx, account.RealmPartner, r.PostFormValue("email"))
		return err
	})
	if err != nil {
		p.fail(w, r, err, 0, "")
		return
	}
	if inv != nil {
		if err := p.Mailer.SendActivation(r.Context(), inv.Account.Email, ActivationLink(p.BaseURL, inv.Token), inv.ExpiresAt); err != nil {
			p.Log.ErrorContext(r.Context(), "portal: sending activation mail failed", "account_id", inv.Account.ID, "error", err.Error())
		}
	}
	p.linkExpired(w, r, "If an invitation is waiting for this address, a new link is on its way to it.")
}

// reActivate shows the activation form again with an error.
func (p *Portal) reActivate(w http.ResponseWriter, r *http.Request, tok, msg string) {
	a, enr, err := p.Accounts.ActivationOffer(r.Context(), p.DB, tok)
	if err != nil {
		p.fail(w, r, err, 0, "")
		return
	}
	p.render(w, r, http.StatusUnprocessableEntity, "activate", &view{Title: "Activate your account", CSRF: p.preAuthCSRF(w, r), Error: msg,
		Data: activateData{Token: tok, Email: a.Email, Secret: enr.Secret, QR: template.URL(enr.QRDataURL())}})
}

func (p *Portal) signOut(w http.ResponseWriter, r *http.Request) {
	if err := p.Accounts.SignOut(r.Context(), p.DB, current(r).token); err != nil {
		p.fail(w, r, err, 0, "")
		return
	}
	p.clearSession(w)
	securityHeaders(w.Header())
	http.Redirect(w, r, Path+"/sign-in", http.StatusSeeOther)
}

func (p *Portal) signOutEverywhere(w http.ResponseWriter, r *http.Request) {
	if _, err := p.Accounts.SignOutEverywhere(r.Context(), p.DB, current(r).Account.ID); err != nil {
		p.fail(w, r, err, 0, "")
		return
	}
	p.clearSession(w)
	securityHeaders(w.Header())
	http.Redirect(w, r, Path+"/sign-in", http.StatusSeeOther)
}

// --- overview ---

// overviewData is the Overview page: the period and its charts.
type overviewData struct {
	From, To, Timezone string
	Charts             []report.Chart
}

// overview shows the program at a glance: report.Overview's figures over
// the period of ?from=&to= (by default the last 30 days in the partner's
// time zone), as the accessible SVG charts of package report. The same
// figures are GET /integrations/reports/{name} for automation.
func (p *Portal) overview(w http.ResponseWriter, r *http.Request) {
	v := &view{Title: "Overview", Nav: "overview"}
	me := current(r)
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	q := r.URL.Query()
	rg, err := report.ParseRange(q.Get("from"), q.Get("to"), report.Today(now(), me.Partner.Timezone))
	if err != nil {
		p.fail(w, r, err, 0, "")
		return
	}
	o, err := report.Overview(r.Context(), p.DB, me.Partner.ID, rg.From, rg.To)
	if err != nil {
		p.fail(w, r, err, 0, "")
		return
	}
	v.Data = overviewData{From: o.From, To: o.To, Timezone: o.Timezone, Charts: o.Charts()}
	p.render(w, r, http.StatusOK, "overview", v)
}

// --- team ---

type teamData struct {
	Accounts []account.Account
	Link     string
}

func (p *Portal) team(w http.ResponseWriter, r *http.Request) {
	p.teamPage(w, r, http.StatusOK, "", "", "")
}

func (p *Portal) teamPage(w http.ResponseWriter, r *http.Request, status int, notice, errMsg, link string) {
	me := current(r)
	list, err := p.Accounts.List(r.Context(), p.DB, account.RealmPartner, me.Account.Scope())
	if err != nil {
		p.fail(w, r, err, 0, "")
		return
	}
	p.render(w, r, status, "team", &view{Title: "Team", Nav: "team", Notice: notice, Error: errMsg, Data: teamData{Accounts: list, Link: link}})
}

// ActivationLink is the link an invitation sends.
func ActivationLink(base, token string) string {
	return strings.TrimRight(base, "/") + Path + "/activate?token=" + url.QueryEscape(token)
}

func (p *Portal) invite(w http.ResponseWriter, r *http.Request) {
	me := current(r)
	var inv *account.Invitation
	err := p.DB.RunInTx(r.Context(), nil, func(ctx context.Context, tx bun.Tx) error {
		var err error
		inv, err = p.Accounts.InviteTx(ctx, tx, account.InviteParams{
			Realm: account.RealmPartner, RealmID: me.Account.Scope(), Email: r.PostFormValue("email"), Name: r.PostFormValue("name"),
			Role: r.PostFormValue("role"), Actor: me.actor(),
		})
		return err
	})
	if err != nil {
		if e := apperr.As(err); e != nil && e.Code != apperr.CodeInternal {
			p.teamPage(w, r, apperr.Lookup(e.Code).Status, "", e.Message, "")
			return
		}
		p.fail(w, r, err, 0, "")
		return
	}
	link := ActivationLink(p.BaseURL, inv.Token)
	if p.Mailer != nil {
		if err := p.Mailer.SendActivation(r.Context(), inv.Account.Email, link, inv.ExpiresAt); err != nil {
			p.Log.ErrorContext(r.Context(), "portal: sending activation mail failed", "account_id", inv.Account.ID, "error", err.Error())
			p.teamPage(w, r, http.StatusOK, "", "The invitation is ready but the mail could not be sent; send this link yourself:", link)
			return
		}
		p.teamPage(w, r, http.StatusOK, "An activation link was sent to "+inv.Account.Email+".", "", "")
		return
	}
	p.teamPage(w, r, http.StatusOK, "Send this activation link to "+inv.Account.Email+" (it works once, until "+inv.ExpiresAt.UTC().Format("2006-01-02 15:04 UTC")+"):", "", link)
}

func (p *Portal) setRole(w http.ResponseWriter, r *http.Request) {
	id, err := parseID(r)
	if err == nil {
		err = p.Accounts.SetRole(r.Context(), p.DB, current(r).Account, id, r.PostFormValue("role"))
	}
	p.afterTeamChange(w, r, err, "Role changed.")
}

func (p *Portal) remove(w http.ResponseWriter, r *http.Request) {
	id, err := parseID(r)
	if err == nil {
		err = p.Accounts.Remove(r.Context(), p.DB, current(r).Account, id)
	}
	p.afterTeamChange(w, r, err, "User removed; their sessions have ended.")
}

func (p *Portal) afterTeamChange(w http.ResponseWriter, r *http.Request, err error, ok string) {
	if err != nil {
		if e := apperr.As(err); e != nil {
			p.teamPage(w, r, apperr.Lookup(e.Code).Status, "", e.Message, "")
			return
		}
		p.fail(w, r, err, 0, "")
		return
	}
	p.teamPage(w, r, http.StatusOK, ok, "", "")
}

// --- audit log ---

type auditData struct {
	Entries []audit.Entry
	Next    int64
}

const auditPageSize = 50

func (p *Portal) auditPage(w http.ResponseWriter, r *http.Request) {
	before, _ := strconv.ParseInt(r.URL.Query().Get("before"), 10, 64)
	entries, err := p.Audit.List(r.Context(), p.DB, audit.ListParams{Realm: audit.RealmPartner, RealmID: current(r).Partner.ID, BeforeID: before, Limit: auditPageSize})
	if err != nil {
		p.fail(w, r, err, 0, "")
		return
	}
	d := auditData{Entries: entries}
	if len(entries) == auditPageSize {
		d.Next = entries[len(entries)-1].ID
	}
	p.render(w, r, http.StatusOK, "audit", &view{Title: "Audit log", Nav: "audit", Data: d})
}

// auditCSVMax caps one export; page with ?before= for more.
const auditCSVMax = 10000

func (p *Portal) auditCSV(w http.ResponseWriter, r *http.Request) {
	me := current(r)
	before, _ := strconv.ParseInt(r.URL.Query().Get("before"), 10, 64)
	entries, err := p.Audit.List(r.Context(), p.DB, audit.ListParams{Realm: audit.RealmPartner, RealmID: me.Partner.ID, BeforeID: before, Limit: auditCSVMax})
	if err != nil {
		p.fail(w, r, err, 0, "")
		return
	}
	securityHeaders(w.Header())
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+me.Partner.Slug+`-audit.csv"`)
	if err := audit.WriteCSV(w, entries); err != nil {
		p.Log.ErrorContext(r.Context(), "portal: audit export", "error", err.Error())
	}
}
