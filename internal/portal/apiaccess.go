package portal

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"net/http"
	"strings"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/audit"
	"github.com/perkshq/perks/internal/partner"
)

// The API access page is seed 004's table: Ed25519 credentials (API key
// plus a key pair whose private key is shown once, or the partner's own
// public key), enable/disable, rotate. It calls the partner service the CLI
// (`perks partner credential`) calls, and audits each change in the same
// transaction.

type apiAccessData struct {
	Credentials []partner.Credential
	// Created is shown once, right after creating or rotating.
	Created *createdCredential
}

type createdCredential struct {
	ID            uuid.UUID
	APIKey        string
	PrivateKeyPEM string
	PublicKey     string
	PartnerSlug   string
}

func (p *Portal) apiAccess(w http.ResponseWriter, r *http.Request) {
	p.apiAccessPage(w, r, http.StatusOK, "", "", nil)
}

func (p *Portal) apiAccessPage(w http.ResponseWriter, r *http.Request, status int, notice, errMsg string, created *createdCredential) {
	me := current(r)
	creds, err := p.Partners.ListCredentials(r.Context(), p.DB, me.Partner.ID)
	if err != nil {
		p.fail(w, r, err, 0, "")
		return
	}
	p.render(w, r, status, "api-access", &view{Title: "API access", Nav: "api-access", Notice: notice, Error: errMsg,
		Data: apiAccessData{Credentials: creds, Created: created}})
}

func credentialState(c *partner.Credential) map[string]any {
	m := map[string]any{"id": c.ID, "kind": c.Kind, "description": c.Description, "enabled": c.Enabled}
	if len(c.PublicKey) > 0 {
		m["publicKey"] = base64.StdEncoding.EncodeToString(c.PublicKey)
	}
	return m
}

// createEd25519Tx creates the credential and its audit entry.
func (p *Portal) createEd25519Tx(ctx context.Context, tx bun.Tx, me *signedIn, desc string, pub ed25519.PublicKey, action string, before any) (*partner.Ed25519Credential, error) {
	c, err := p.Partners.CreateEd25519Credential(ctx, tx, me.Partner.ID, desc, pub)
	if err != nil {
		return nil, err
	}
	after := credentialState(c.Credential)
	_, err = p.Audit.RecordTx(ctx, tx, audit.Change{Realm: audit.RealmPartner, RealmID: me.Partner.ID, Actor: me.actor(),
		Action: action, Target: "credential " + c.Credential.ID.String(), Before: before, After: after})
	return c, err
}

func (p *Portal) created(me *signedIn, c *partner.Ed25519Credential) *createdCredential {
	return &createdCredential{ID: c.Credential.ID, APIKey: c.APIKey, PrivateKeyPEM: c.PrivateKeyPEM,
		PublicKey: base64.StdEncoding.EncodeToString(c.PublicKey), PartnerSlug: me.Partner.Slug}
}

func (p *Portal) createCredential(w http.ResponseWriter, r *http.Request) {
	me := current(r)
	desc := strings.TrimSpace(r.PostFormValue("description"))
	if len(desc) > 200 {
		p.apiAccessPage(w, r, http.StatusUnprocessableEntity, "", "The description is at most 200 characters.", nil)
		return
	}
	var pub ed25519.PublicKey
	if text := strings.TrimSpace(r.PostFormValue("publicKey")); text != "" {
		k, err := partner.ParseEd25519PublicKey(text)
		if err != nil {
			p.apiAccessPage(w, r, http.StatusUnprocessableEntity, "", apperr.As(err).Message, nil)
			return
		}
		pub = k
	}
	var c *partner.Ed25519Credential
	err := p.DB.RunInTx(r.Context(), nil, func(ctx context.Context, tx bun.Tx) error {
		var err error
		c, err = p.createEd25519Tx(ctx, tx, me, desc, pub, "credential.create", nil)
		return err
	})
	if err != nil {
		p.fail(w, r, err, 0, "")
		return
	}
	p.apiAccessPage(w, r, http.StatusCreated, "API access created. Copy the API key now: it is never shown again.", "", p.created(me, c))
}

// findCredential loads one of the signed-in partner's credentials; another
// partner's id is NOT_FOUND.
func (p *Portal) findCredential(ctx context.Context, db bun.IDB, partnerID, id uuid.UUID) (*partner.Credential, error) {
	creds, err := p.Partners.ListCredentials(ctx, db, partnerID)
	if err != nil {
		return nil, err
	}
	for i := range creds {
		if creds[i].ID == id {
			return &creds[i], nil
		}
	}
	return nil, apperr.New(apperr.CodeNotFound, "credential not found")
}

func (p *Portal) enableCredential(enabled bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		me := current(r)
		id, err := parseID(r)
		if err == nil {
			err = p.DB.RunInTx(r.Context(), nil, func(ctx context.Context, tx bun.Tx) error {
				c, err := p.findCredential(ctx, tx, me.Partner.ID, id)
				if err != nil {
					return err
				}
				if err := p.Partners.SetCredentialEnabled(ctx, tx, me.Partner.ID, id, enabled); err != nil {
					return err
				}
				before := credentialState(c)
				c.Enabled = enabled
				action := "credential.disable"
				if enabled {
					action = "credential.enable"
				}
				_, err = p.Audit.RecordTx(ctx, tx, audit.Change{Realm: audit.RealmPartner, RealmID: me.Partner.ID, Actor: me.actor(),
					Action: action, Target: "credential " + id.String(), Before: before, After: credentialState(c)})
				return err
			})
		}
		if err != nil {
			if e := apperr.As(err); e != nil {
				p.apiAccessPage(w, r, apperr.Lookup(e.Code).Status, "", e.Message, nil)
				return
			}
			p.fail(w, r, err, 0, "")
			return
		}
		p.apiAccessPage(w, r, http.StatusOK, "Saved.", "", nil)
	}
}

// rotateCredential replaces an Ed25519 credential with a freshly generated
// one and disables the old one in the same transaction. For an overlap,
// create a second record instead and disable the first once switched.
func (p *Portal) rotateCredential(w http.ResponseWriter, r *http.Request) {
	me := current(r)
	id, err := parseID(r)
	var c *partner.Ed25519Credential
	if err == nil {
		err = p.DB.RunInTx(r.Context(), nil, func(ctx context.Context, tx bun.Tx) error {
			old, err := p.findCredential(ctx, tx, me.Partner.ID, id)
			if err != nil {
				return err
			}
			if old.Kind != partner.KindEd25519 {
				return apperr.New(apperr.CodeInvalidField, "only Ed25519 records rotate here")
			}
			if err := p.Partners.SetCredentialEnabled(ctx, tx, me.Partner.ID, id, false); err != nil {
				return err
			}
			c, err = p.createEd25519Tx(ctx, tx, me, old.Description, nil, "credential.rotate", credentialState(old))
			return err
		})
	}
	if err != nil {
		if e := apperr.As(err); e != nil {
			p.apiAccessPage(w, r, apperr.Lookup(e.Code).Status, "", e.Message, nil)
			return
		}
		p.fail(w, r, err, 0, "")
		return
	}
	p.apiAccessPage(w, r, http.StatusCreated, "Rotated: the old record is disabled. Copy the new API key and private key now: they are never shown again.", "", p.created(me, c))
}
