package console

import (
	"context"
	"net/http"
	"strings"

	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/account"
	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/audit"
	"github.com/perkshq/perks/internal/partner"
	"github.com/perkshq/perks/internal/portal"
	"github.com/perkshq/perks/internal/report"
)

// --- the partners list and creation ---

type partnersData struct {
	Partners []partner.Partner
	Form     partnerForm
}

type partnerForm struct{ Slug, Name, DisplayName, Currency string }

func (c *Console) partners(w http.ResponseWriter, r *http.Request) {
	c.partnersPage(w, r, http.StatusOK, "", "", partnerForm{})
}

func (c *Console) partnersPage(w http.ResponseWriter, r *http.Request, status int, notice, errMsg string, form partnerForm) {
	ps, err := c.Partners.List(r.Context(), c.DB)
	if err != nil {
		c.fail(w, r, err, 0, "")
		return
	}
	c.render(w, r, status, "partners", &view{Title: "Partners", Nav: "partners", Notice: notice, Error: errMsg, Data: partnersData{Partners: ps, Form: form}})
}

// createPartner creates a partner pending approval: it gets no API access
// until an admin approves it (the CLI's `perks partner create --pending`).
func (c *Console) createPartner(w http.ResponseWriter, r *http.Request) {
	me := current(r)
	form := partnerForm{
		Slug: strings.TrimSpace(r.PostFormValue("slug")), Name: strings.TrimSpace(r.PostFormValue("name")),
		DisplayName: strings.TrimSpace(r.PostFormValue("displayName")), Currency: strings.TrimSpace(r.PostFormValue("currency")),
	}
	var p *partner.Partner
	err := c.DB.RunInTx(r.Context(), nil, func(ctx context.Context, tx bun.Tx) error {
		if len(form.Name) > 200 || len(form.DisplayName) > 200 || len(form.Currency) > 50 {
			return apperr.Field(apperr.CodeInvalidField, "name", "names are at most 200 characters, the currency at most 50")
		}
		if _, err := c.Partners.BySlug(ctx, tx, form.Slug); err == nil {
			return apperr.Field(apperr.CodeConflict, "slug", "a partner with the slug %q already exists", form.Slug)
		}
		var err error
		p, err = c.Partners.Upsert(ctx, tx, partner.CreateParams{Slug: form.Slug, Name: form.Name, DisplayName: form.DisplayName,
			CurrencyName: form.Currency, Status: partner.StatusPending})
		if err != nil {
			return err
		}
		_, err = c.Audit.RecordTx(ctx, tx, audit.Change{Realm: audit.RealmPlatform, Actor: me.actor(), Action: "partner.create", Target: "partner " + p.Slug,
			After: map[string]any{"partnerId": p.ID, "slug": p.Slug, "name": p.Name, "status": p.Status}})
		return err
	})
	if err != nil {
		if status, msg, ok := failed(err); ok {
			c.partnersPage(w, r, status, "", msg, form)
			return
		}
		c.fail(w, r, err, 0, "")
		return
	}
	securityHeaders(w.Header())
	http.Redirect(w, r, Path+"/partners/"+p.Slug+"?created=1", http.StatusSeeOther)
}

// --- one partner: onboarding, owner invitation, usage ---

type partnerData struct {
	Partner  *partner.Partner
	Accounts []account.Account
	From, To string
	Timezone string
	Charts   []report.Chart
	Link     string
}

func (c *Console) loadPartner(w http.ResponseWriter, r *http.Request) *partner.Partner {
	p, err := c.Partners.BySlug(r.Context(), c.DB, r.PathValue("slug"))
	if err != nil {
		c.fail(w, r, err, 0, "")
		return nil
	}
	return p
}

func (c *Console) partnerPage(w http.ResponseWriter, r *http.Request) {
	p := c.loadPartner(w, r)
	if p == nil {
		return
	}
	notice := ""
	if r.URL.Query().Get("created") != "" {
		notice = "Partner created. It is pending: approve it to start its API access, and invite its first owner."
	}
	c.partnerView(w, r, p, http.StatusOK, notice, "", "")
}

// partnerView renders the partner page: usage over ?from=&to= (the last 30
// days in the partner's time zone by default) as charts, its portal team,
// and the onboarding actions.
func (c *Console) partnerView(w http.ResponseWriter, r *http.Request, p *partner.Partner, status int, notice, errMsg, link string) {
	q := r.URL.Query()
	rg, err := report.ParseRange(q.Get("from"), q.Get("to"), report.Today(c.now(), p.Timezone))
	if err != nil {
		c.fail(w, r, err, 0, "")
		return
	}
	days, err := report.Usage(r.Context(), c.DB, p.ID, rg)
	if err != nil {
		c.fail(w, r, err, 0, "")
		return
	}
	accs, err := c.Accounts.List(r.Context(), c.DB, account.RealmPartner, p.ID)
	if err != nil {
		c.fail(w, r, err, 0, "")
		return
	}
	d := partnerData{Partner: p, Accounts: accs, From: rg.From.Format("2006-01-02"), To: rg.To.Format("2006-01-02"),
		Timezone: p.Timezone, Charts: report.UsageCharts(days, p.Timezone), Link: link}
	c.render(w, r, status, "partner", &view{Title: p.DisplayName + " (" + p.Slug + ")", Nav: "partners", Notice: notice, Error: errMsg, Data: d})
}

var statusNotice = map[string]string{
	partner.ActionApprove: "Approved: the partner's API access, consumer tokens and webhooks work now.",
	partner.ActionSuspend: "Suspended: the partner's API calls, consumer tokens and merchants are refused (PARTNER_SUSPENDED) and its webhooks wait.",
	partner.ActionResume:  "Resumed: the partner is active again.",
}

func (c *Console) setPartnerStatus(w http.ResponseWriter, r *http.Request) {
	p := c.loadPartner(w, r)
	if p == nil {
		return
	}
	action := r.PostFormValue("action")
	var after *partner.Partner
	err := c.DB.RunInTx(r.Context(), nil, func(ctx context.Context, tx bun.Tx) error {
		var err error
		after, err = c.Partners.SetStatusTx(ctx, tx, c.Audit, current(r).actor(), p.ID, action)
		return err
	})
	if err != nil {
		if status, msg, ok := failed(err); ok {
			c.partnerView(w, r, p, status, "", msg, "")
			return
		}
		c.fail(w, r, err, 0, "")
		return
	}
	c.partnerView(w, r, after, http.StatusOK, statusNotice[action], "", "")
}

// inviteOwner invites someone as an owner of the partner's portal (the
// first owner, who then invites the rest of the team). The link opens the
// partner portal's activation page.
func (c *Console) inviteOwner(w http.ResponseWriter, r *http.Request) {
	p := c.loadPartner(w, r)
	if p == nil {
		return
	}
	var inv *account.Invitation
	err := c.DB.RunInTx(r.Context(), nil, func(ctx context.Context, tx bun.Tx) error {
		if err := p.CheckInvitable(); err != nil {
			return err
		}
		var err error
		inv, err = c.Accounts.InviteTx(ctx, tx, account.InviteParams{Realm: account.RealmPartner, RealmID: p.ID,
			Email: r.PostFormValue("email"), Name: r.PostFormValue("name"), Role: account.RoleOwner, Actor: current(r).actor()})
		if err != nil {
			return err
		}
		// The invitation is audited in the partner's realm (its owners see
		// it); the platform's log says an admin did it.
		_, err = c.Audit.RecordTx(ctx, tx, audit.Change{Realm: audit.RealmPlatform, Actor: current(r).actor(), Action: "partner.invite_owner",
			Target: "partner " + p.Slug, After: map[string]any{"email": inv.Account.Email, "role": account.RoleOwner}})
		return err
	})
	if err != nil {
		if status, msg, ok := failed(err); ok {
			c.partnerView(w, r, p, status, "", msg, "")
			return
		}
		c.fail(w, r, err, 0, "")
		return
	}
	notice, link := c.sendLink(r, inv, portal.ActivationLink(c.BaseURL, inv.Token))
	c.partnerView(w, r, p, http.StatusOK, notice, "", link)
}
