package merchantportal

import (
	"context"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/merchant"
)

// API credentials for server-to-server redemption (seed 004): an API key
// and an Ed25519 key pair generated here, the private key shown once.
// Admin only (PermCredentials). A credential authenticates for one
// partner: a merchant serving several has one (or more) per partner.

type credentialsData struct {
	Credentials []merchant.Credential
	// Created is shown once, right after creating or rotating.
	Created *createdCredential
	Now     time.Time
}

type createdCredential struct {
	ID            uuid.UUID
	APIKey        string
	PrivateKeyPEM string
	Partner       string
}

// partnerName names a partner the merchant serves.
func (s *signedIn) PartnerNameOf(id uuid.UUID) string {
	if sv := s.served(id); sv != nil {
		return sv.PartnerName
	}
	return id.String()
}

func (p *Portal) credentials(w http.ResponseWriter, r *http.Request) {
	p.credentialsPage(w, r, http.StatusOK, "", "", nil)
}

func (p *Portal) credentialsPage(w http.ResponseWriter, r *http.Request, status int, notice, errMsg string, created *merchant.NewCredential) {
	me := current(r)
	creds, err := p.Merchants.CredentialsOf(r.Context(), p.DB, me.MerchantID())
	if err != nil {
		p.fail(w, r, err, 0, "")
		return
	}
	d := credentialsData{Credentials: creds, Now: p.now()}
	if created != nil {
		c := created.Credential
		d.Created = &createdCredential{ID: c.ID, APIKey: created.APIKey, PrivateKeyPEM: created.PrivateKeyPEM, Partner: me.PartnerNameOf(c.PartnerID)}
	}
	p.render(w, r, status, "credentials", &view{Title: "API credentials", Nav: "credentials", Notice: notice, Error: errMsg, Data: d})
}

// credentialState is what the audit log keeps of a credential: never a
// secret (the private key is not even known here after the response).
func credentialState(c *merchant.Credential) map[string]any {
	return map[string]any{"id": c.ID, "partnerId": c.PartnerID, "description": c.Description, "enabled": c.Enabled, "expiresAt": c.ExpiresAt}
}

func (p *Portal) afterCredential(w http.ResponseWriter, r *http.Request, err error, status int, notice string, created *merchant.NewCredential) {
	if err != nil {
		if e := apperr.As(err); e != nil && e.Code != apperr.CodeInternal {
			p.credentialsPage(w, r, apperr.Lookup(e.Code).Status, "", e.Message, nil)
			return
		}
		p.fail(w, r, err, 0, "")
		return
	}
	p.credentialsPage(w, r, status, notice, "", created)
}

func (p *Portal) createCredential(w http.ResponseWriter, r *http.Request) {
	me := current(r)
	var nc *merchant.NewCredential
	partnerID, err := uuid.Parse(r.PostFormValue("partner"))
	if err != nil || me.served(partnerID) == nil {
		err = apperr.Field(apperr.CodeInvalidField, "partner", "choose a program from the list")
	}
	if err == nil {
		err = p.DB.RunInTx(r.Context(), nil, func(ctx context.Context, tx bun.Tx) error {
			var err error
			if nc, err = p.Merchants.AddCredentialFor(ctx, tx, me.MerchantID(), partnerID, r.PostFormValue("description")); err != nil {
				return err
			}
			return p.record(ctx, tx, me, "merchant_credential.create", nc.Credential.ID.String(), nil, credentialState(nc.Credential))
		})
	}
	p.afterCredential(w, r, err, http.StatusCreated, "Created. Copy the API key and the private key now: they are never shown again.", nc)
}

// overlaps are the rotation overlaps offered.
var overlaps = map[string]time.Duration{"0": 0, "1h": time.Hour, "24h": 24 * time.Hour, "7d": 7 * 24 * time.Hour}

func (p *Portal) rotateCredential(w http.ResponseWriter, r *http.Request) {
	me := current(r)
	id, err := parseID(r)
	overlap, ok := overlaps[r.PostFormValue("overlap")]
	if err == nil && !ok {
		err = apperr.Field(apperr.CodeInvalidField, "overlap", "choose how long the old key keeps working")
	}
	var nc *merchant.NewCredential
	if err == nil {
		err = p.DB.RunInTx(r.Context(), nil, func(ctx context.Context, tx bun.Tx) error {
			var old *merchant.Credential
			var err error
			if nc, old, err = p.Merchants.RotateCredentialOf(ctx, tx, me.MerchantID(), id, overlap); err != nil {
				return err
			}
			return p.record(ctx, tx, me, "merchant_credential.rotate", old.ID.String(), credentialState(old), credentialState(nc.Credential))
		})
	}
	notice := "Rotated: the old key stopped working. Copy the new API key and private key now: they are never shown again."
	if overlap > 0 {
		notice = "Rotated: the old key keeps working for " + r.PostFormValue("overlap") + ", then stops. Copy the new API key and private key now: they are never shown again."
	}
	p.afterCredential(w, r, err, http.StatusCreated, notice, nc)
}

func (p *Portal) disableCredential(w http.ResponseWriter, r *http.Request) {
	me := current(r)
	id, err := parseID(r)
	if err == nil {
		err = p.DB.RunInTx(r.Context(), nil, func(ctx context.Context, tx bun.Tx) error {
			c, err := p.Merchants.DisableCredentialOf(ctx, tx, me.MerchantID(), id)
			if err != nil {
				return err
			}
			return p.record(ctx, tx, me, "merchant_credential.disable", c.ID.String(), nil, credentialState(c))
		})
	}
	p.afterCredential(w, r, err, http.StatusOK, "Disabled: requests signed with this key are refused from now on.", nil)
}
