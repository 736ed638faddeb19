package portal

import (
	"context"
	"html/template"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/account"
	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/audit"
	"github.com/perkshq/perks/internal/partner"
)

// The sandbox (docs/sandbox.md): the live partner's test environment, a
// partner of its own. The signed-in account switches between live and
// sandbox in its server-side session (account.SetSessionSandbox); authed
// then loads the sandbox as current(r).Partner, so every page acts on it
// with no change of its own, with the same account and permissions. The
// layout shows a banner on every sandbox page, a "Live" badge otherwise.
//
// What is shared: portal accounts, roles and the Team page (always the
// live partner's). Everything else (data, credentials, webhooks, reports,
// audit log) is the sandbox's own.

func init() {
	pages["sandbox"] = template.Must(template.New("layout.html").Funcs(funcs).ParseFS(files, "templates/layout.html", "templates/sandbox.html"))
}

func (p *Portal) registerSandbox(h func(string, http.HandlerFunc)) {
	h("GET "+Path+"/sandbox", p.authed(account.PermView, p.sandboxPage))
	h("POST "+Path+"/sandbox", p.authed(account.PermCredentials, p.createSandbox))
	h("POST "+Path+"/sandbox/reset", p.authed(account.PermCredentials, p.resetSandbox))
	h("POST "+Path+"/environment", p.authed(account.PermView, p.switchEnvironment))
}

// sessionSandbox is the partner a sandbox session acts on: live's sandbox
// or, when it is gone, live (the session is switched back).
func (p *Portal) sessionSandbox(ctx context.Context, tok string, live *partner.Partner) (*partner.Partner, error) {
	sb, err := p.Partners.Sandbox(ctx, p.DB, live.ID)
	if apperr.Is(err, apperr.CodeNotFound) {
		return live, p.Accounts.SetSessionSandbox(ctx, p.DB, tok, false)
	}
	return sb, err
}

type sandboxData struct {
	// Live is the account's live partner, Sandbox its sandbox (nil: none).
	Live, Sandbox *partner.Partner
	// Secret is the first HMAC secret of a sandbox just created.
	Secret string
	// Deleted lists what a reset just removed.
	Deleted []string
}

func (p *Portal) sandboxData(ctx context.Context, me *signedIn) (sandboxData, error) {
	live, err := p.Partners.ByID(ctx, p.DB, me.Account.Scope())
	if err != nil {
		return sandboxData{}, err
	}
	d := sandboxData{Live: live}
	sb, err := p.Partners.Sandbox(ctx, p.DB, live.ID)
	switch {
	case err == nil:
		d.Sandbox = sb
	case !apperr.Is(err, apperr.CodeNotFound):
		return d, err
	}
	return d, nil
}

func (p *Portal) sandboxPage(w http.ResponseWriter, r *http.Request) {
	p.renderSandbox(w, r, http.StatusOK, "", "", func(*sandboxData) {})
}

func (p *Portal) renderSandbox(w http.ResponseWriter, r *http.Request, status int, notice, errMsg string, fill func(*sandboxData)) {
	d, err := p.sandboxData(r.Context(), current(r))
	if err != nil {
		p.fail(w, r, err, 0, "")
		return
	}
	fill(&d)
	p.render(w, r, status, "sandbox", &view{Title: "Sandbox", Nav: "sandbox", Notice: notice, Error: errMsg, Data: d})
}

// createSandbox creates the sandbox (or finds it), switches this session
// to it and shows the secret of its first HMAC credential once.
func (p *Portal) createSandbox(w http.ResponseWriter, r *http.Request) {
	me := current(r)
	var res *partner.NewSandbox
	err := p.DB.RunInTx(r.Context(), nil, func(ctx context.Context, tx bun.Tx) error {
		var err error
		res, err = p.Partners.CreateSandboxTx(ctx, tx, me.Account.Scope())
		if err != nil || !res.Created {
			return err
		}
		_, err = p.Audit.RecordTx(ctx, tx, audit.Change{Realm: audit.RealmPartner, RealmID: me.Account.Scope(), Actor: me.actor(),
			Action: "sandbox.create", Target: "partner " + res.Sandbox.Slug,
			After: map[string]any{"id": res.Sandbox.ID, "slug": res.Sandbox.Slug}})
		return err
	})
	if err == nil {
		err = p.Accounts.SetSessionSandbox(r.Context(), p.DB, me.token, true)
	}
	if err != nil {
		p.fail(w, r, err, 0, "")
		return
	}
	me.Partner = res.Sandbox
	notice := "You are now in the sandbox."
	if res.Created {
		notice = "Sandbox created; you are now in it."
	}
	p.renderSandbox(w, r, http.StatusOK, notice, "", func(d *sandboxData) { d.Secret = res.HMACSecret })
}

// switchEnvironment moves this session to live or to the sandbox.
func (p *Portal) switchEnvironment(w http.ResponseWriter, r *http.Request) {
	me := current(r)
	sandbox := r.PostFormValue("environment") == partner.EnvironmentSandbox
	if !sandbox && r.PostFormValue("environment") != partner.EnvironmentLive {
		p.fail(w, r, nil, http.StatusBadRequest, "Choose live or sandbox.")
		return
	}
	if sandbox {
		if _, err := p.Partners.Sandbox(r.Context(), p.DB, me.Account.Scope()); err != nil {
			if apperr.Is(err, apperr.CodeNotFound) {
				p.renderSandbox(w, r, http.StatusConflict, "", "There is no sandbox yet: create it first.", func(*sandboxData) {})
				return
			}
			p.fail(w, r, err, 0, "")
			return
		}
	}
	if err := p.Accounts.SetSessionSandbox(r.Context(), p.DB, me.token, sandbox); err != nil {
		p.fail(w, r, err, 0, "")
		return
	}
	securityHeaders(w.Header())
	http.Redirect(w, r, Path+"/sandbox", http.StatusSeeOther)
}

// resetSandbox wipes the sandbox's data once the form's confirmation
// field repeats the sandbox's slug; anything else changes nothing.
func (p *Portal) resetSandbox(w http.ResponseWriter, r *http.Request) {
	me := current(r)
	sb, err := p.Partners.Sandbox(r.Context(), p.DB, me.Account.Scope())
	if err != nil {
		p.fail(w, r, err, 0, "")
		return
	}
	if strings.TrimSpace(r.PostFormValue("confirm")) != sb.Slug {
		p.renderSandbox(w, r, http.StatusBadRequest, "", "Nothing was reset: type the sandbox's slug ("+sb.Slug+") to confirm.", func(*sandboxData) {})
		return
	}
	var deleted map[string]int64
	err = p.DB.RunInTx(r.Context(), nil, func(ctx context.Context, tx bun.Tx) error {
		var err error
		if deleted, err = p.Partners.ResetSandboxTx(ctx, tx, sb.ID); err != nil {
			return err
		}
		_, err = p.Audit.RecordTx(ctx, tx, audit.Change{Realm: audit.RealmPartner, RealmID: sb.ID, Actor: me.actor(),
			Action: "sandbox.reset", Target: "partner " + sb.Slug, After: map[string]any{"deleted": deleted}})
		return err
	})
	if err != nil {
		p.fail(w, r, err, 0, "")
		return
	}
	p.renderSandbox(w, r, http.StatusOK, "The sandbox was reset; its credentials are kept.", "", func(d *sandboxData) {
		for table, n := range deleted {
			d.Deleted = append(d.Deleted, table+": "+strconv.FormatInt(n, 10))
		}
		sort.Strings(d.Deleted)
	})
}
