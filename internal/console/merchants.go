package console

import (
	"context"
	"net/http"
	"strings"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/account"
	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/audit"
	"github.com/perkshq/perks/internal/merchant"
	"github.com/perkshq/perks/internal/partner"
)

// Merchants: create one for a partner, attach it to another partner (the
// same code, a row and credential per partner), invite its admin to the
// merchant portal. A new merchant's first API credential is shown once,
// as `perks merchant create` prints it.

type merchantsData struct {
	Merchants []merchant.Listed
	Partners  []partner.Partner
	Created   *createdMerchant
	Link      string
	Form      merchantForm
}

type merchantForm struct{ Partner, Name, Code string }

type createdMerchant struct {
	Code, PartnerSlug, APIKey, PrivateKeyPEM string
}

func (c *Console) merchants(w http.ResponseWriter, r *http.Request) {
	c.merchantsPage(w, r, http.StatusOK, "", "", merchantsData{})
}

func (c *Console) merchantsPage(w http.ResponseWriter, r *http.Request, status int, notice, errMsg string, d merchantsData) {
	var err error
	if d.Merchants, err = c.Merchants.ListAll(r.Context(), c.DB); err != nil {
		c.fail(w, r, err, 0, "")
		return
	}
	if d.Partners, err = c.Partners.List(r.Context(), c.DB); err != nil {
		c.fail(w, r, err, 0, "")
		return
	}
	c.render(w, r, status, "merchants", &view{Title: "Merchants", Nav: "merchants", Notice: notice, Error: errMsg, Data: d})
}

func (c *Console) merchantFailed(w http.ResponseWriter, r *http.Request, err error, form merchantForm) {
	if status, msg, ok := failed(err); ok {
		c.merchantsPage(w, r, status, "", msg, merchantsData{Form: form})
		return
	}
	c.fail(w, r, err, 0, "")
}

func merchantState(m *merchant.Merchant, partnerSlug string) map[string]any {
	return map[string]any{"merchantId": m.ID, "code": m.Code, "name": m.Name, "partner": partnerSlug}
}

func (c *Console) createMerchant(w http.ResponseWriter, r *http.Request) {
	form := merchantForm{Partner: r.PostFormValue("partner"), Name: strings.TrimSpace(r.PostFormValue("name")), Code: strings.TrimSpace(r.PostFormValue("code"))}
	var created *createdMerchant
	err := c.DB.RunInTx(r.Context(), nil, func(ctx context.Context, tx bun.Tx) error {
		p, err := c.Partners.BySlug(ctx, tx, form.Partner)
		if err != nil {
			return apperr.Field(apperr.CodeInvalidField, "partner", "choose the partner the merchant serves")
		}
		m, cred, err := c.Merchants.CreateTx(ctx, tx, p.ID, form.Name, form.Code)
		if err != nil {
			return err
		}
		created = &createdMerchant{Code: m.Code, PartnerSlug: p.Slug, APIKey: cred.APIKey, PrivateKeyPEM: cred.PrivateKeyPEM}
		_, err = c.Audit.RecordTx(ctx, tx, audit.Change{Realm: audit.RealmPlatform, Actor: current(r).actor(), Action: "merchant.create",
			Target: "merchant " + m.Code, After: merchantState(m, p.Slug)})
		return err
	})
	if err != nil {
		c.merchantFailed(w, r, err, form)
		return
	}
	c.merchantsPage(w, r, http.StatusCreated, "Merchant created. Copy its API key and private key now: they are never shown again (its admin can make new ones in the merchant portal).", "",
		merchantsData{Created: created})
}

// loadMerchant reads the {id} path value.
func (c *Console) loadMerchant(ctx context.Context, db bun.IDB, r *http.Request) (*merchant.Merchant, error) {
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		return nil, apperr.New(apperr.CodeNotFound, "merchant not found")
	}
	return c.Merchants.ByID(ctx, db, id)
}

func (c *Console) attachMerchant(w http.ResponseWriter, r *http.Request) {
	var created *createdMerchant
	err := c.DB.RunInTx(r.Context(), nil, func(ctx context.Context, tx bun.Tx) error {
		m, err := c.loadMerchant(ctx, tx, r)
		if err != nil {
			return err
		}
		p, err := c.Partners.BySlug(ctx, tx, r.PostFormValue("partner"))
		if err != nil {
			return apperr.Field(apperr.CodeInvalidField, "partner", "choose the partner to attach the merchant to")
		}
		n, attached, err := c.Merchants.AttachTx(ctx, tx, m.ID, p.ID, "")
		if err != nil {
			return err
		}
		if !attached {
			return apperr.Field(apperr.CodeConflict, "partner", "merchant %q already serves this partner", m.Code)
		}
		cred, err := c.Merchants.AddCredentialFor(ctx, tx, m.ID, p.ID, "created by the platform console")
		if err != nil {
			return err
		}
		created = &createdMerchant{Code: n.Code, PartnerSlug: p.Slug, APIKey: cred.APIKey, PrivateKeyPEM: cred.PrivateKeyPEM}
		_, err = c.Audit.RecordTx(ctx, tx, audit.Change{Realm: audit.RealmPlatform, Actor: current(r).actor(), Action: "merchant.attach",
			Target: "merchant " + n.Code, After: merchantState(n, p.Slug)})
		return err
	})
	if err != nil {
		c.merchantFailed(w, r, err, merchantForm{})
		return
	}
	c.merchantsPage(w, r, http.StatusCreated, "Merchant "+created.Code+" now serves "+created.PartnerSlug+". Copy the credential for this partner now: it is never shown again.", "",
		merchantsData{Created: created})
}

// inviteMerchantAdmin invites the merchant's admin to the merchant portal
// (the merchant realm, role admin): the link opens /merchant/activate.
func (c *Console) inviteMerchantAdmin(w http.ResponseWriter, r *http.Request) {
	var inv *account.Invitation
	err := c.DB.RunInTx(r.Context(), nil, func(ctx context.Context, tx bun.Tx) error {
		m, err := c.loadMerchant(ctx, tx, r)
		if err != nil {
			return err
		}
		inv, err = c.Accounts.InviteTx(ctx, tx, account.InviteParams{Realm: account.RealmMerchant, RealmID: m.ID,
			Email: r.PostFormValue("email"), Name: r.PostFormValue("name"), Role: account.RoleMerchantAdmin, Actor: current(r).actor()})
		if err != nil {
			return err
		}
		_, err = c.Audit.RecordTx(ctx, tx, audit.Change{Realm: audit.RealmPlatform, Actor: current(r).actor(), Action: "merchant.invite_admin",
			Target: "merchant " + m.Code, After: map[string]any{"merchantId": m.ID, "email": inv.Account.Email, "role": account.RoleMerchantAdmin}})
		return err
	})
	if err != nil {
		c.merchantFailed(w, r, err, merchantForm{})
		return
	}
	notice, link := c.sendLink(r, inv, MerchantActivationLink(c.BaseURL, inv.Token))
	c.merchantsPage(w, r, http.StatusOK, notice, "", merchantsData{Link: link})
}
