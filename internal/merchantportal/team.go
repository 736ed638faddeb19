package merchantportal

import (
	"context"
	"net/http"

	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/account"
	"github.com/perkshq/perks/internal/apperr"
)

// The team: the merchant admin invites operators (activation link, mailed
// when SMTP is configured, shown otherwise), changes roles and removes
// access. internal/account enforces the rules (one active admin at least,
// an address used once per realm, every change audited).

type teamData struct {
	Accounts []account.Account
	Link     string
}

func (p *Portal) team(w http.ResponseWriter, r *http.Request) {
	p.teamPage(w, r, http.StatusOK, "", "", "")
}

func (p *Portal) teamPage(w http.ResponseWriter, r *http.Request, status int, notice, errMsg, link string) {
	me := current(r)
	list, err := p.Accounts.List(r.Context(), p.DB, account.RealmMerchant, me.MerchantID())
	if err != nil {
		p.fail(w, r, err, 0, "")
		return
	}
	p.render(w, r, status, "team", &view{Title: "Team", Nav: "team", Notice: notice, Error: errMsg, Data: teamData{Accounts: list, Link: link}})
}

func (p *Portal) invite(w http.ResponseWriter, r *http.Request) {
	me := current(r)
	var inv *account.Invitation
	err := p.DB.RunInTx(r.Context(), nil, func(ctx context.Context, tx bun.Tx) error {
		var err error
		inv, err = p.Accounts.InviteTx(ctx, tx, account.InviteParams{
			Realm: account.RealmMerchant, RealmID: me.MerchantID(), Email: r.PostFormValue("email"), Name: r.PostFormValue("name"),
			Role: r.PostFormValue("role"), Actor: me.Account.Actor(),
		})
		return err
	})
	if err != nil {
		p.afterTeamChange(w, r, err, "")
		return
	}
	link := ActivationLink(p.BaseURL, inv.Token)
	if p.Mailer != nil {
		if err := p.Mailer.SendActivation(r.Context(), inv.Account.Email, link, inv.ExpiresAt); err != nil {
			p.Log.ErrorContext(r.Context(), "merchant portal: sending activation mail failed", "account_id", inv.Account.ID, "error", err.Error())
			p.teamPage(w, r, http.StatusOK, "", "The invitation is ready but the mail could not be sent; send this link yourself:", link)
			return
		}
		p.teamPage(w, r, http.StatusOK, "An activation link was sent to "+inv.Account.Email+".", "", "")
		return
	}
	p.teamPage(w, r, http.StatusOK, "Send this activation link to "+inv.Account.Email+" (it works once, until "+
		inv.ExpiresAt.UTC().Format("2006-01-02 15:04 UTC")+"):", "", link)
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
		if e := apperr.As(err); e != nil && e.Code != apperr.CodeInternal {
			p.teamPage(w, r, apperr.Lookup(e.Code).Status, "", e.Message, "")
			return
		}
		p.fail(w, r, err, 0, "")
		return
	}
	p.teamPage(w, r, http.StatusOK, ok, "", "")
}
