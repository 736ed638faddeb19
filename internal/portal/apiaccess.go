package portal

import (
	"context"
	"net/http"
	"strings"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/audit"
	"github.com/perkshq/perks/internal/credential"
	"github.com/perkshq/perks/internal/event"
	"github.com/perkshq/perks/internal/partner"
	"github.com/perkshq/perks/internal/webhook"
)

// The API access page is seed 004's table: every partner credential
// (Ed25519 API access records with an API key and a key pair whose private
// key is shown once, or the partner's own public key; HMAC secrets; the
// request-JWT credential of seed 001), enable/disable, rotate; the allowed
// origins; and the callback URL with its event subscriptions (a webhook
// endpoint). It calls internal/credential, internal/partner and
// internal/webhook, the services behind /integrations/credentials, the
// partner controls and /integrations/webhook-endpoints, and audits each
// change in the same transaction.

type apiAccessData struct {
	Credentials []partner.Credential
	// Created is shown once, right after creating or rotating.
	Created        *createdCredential
	AllowedOrigins string
	Callback       *webhook.Endpoint
	CallbackID     uuid.UUID
	EventTypes     []eventChoice
}

type eventChoice struct {
	Type    string
	Checked bool
}

type createdCredential struct {
	ID            uuid.UUID
	Kind          string
	APIKey        string
	PrivateKeyPEM string
	PublicKey     string
	Secret        string
	PartnerSlug   string
	PartnerID     uuid.UUID
	// WebhookSecret is the callback endpoint's signing secret, shown once.
	WebhookSecret string
}

func (p *Portal) apiAccess(w http.ResponseWriter, r *http.Request) {
	p.apiAccessPage(w, r, http.StatusOK, "", "", nil)
}

func (p *Portal) apiAccessPage(w http.ResponseWriter, r *http.Request, status int, notice, errMsg string, created *createdCredential) {
	me := current(r)
	ctx := r.Context()
	creds, err := p.Credentials.List(ctx, p.DB, me.Partner.ID)
	if err != nil {
		p.fail(w, r, err, 0, "")
		return
	}
	// Reload the partner: a change on this request (origins) shows at once.
	pt, err := p.Partners.ByID(ctx, p.DB, me.Partner.ID)
	if err != nil {
		p.fail(w, r, err, 0, "")
		return
	}
	d := apiAccessData{Credentials: creds, Created: created, AllowedOrigins: strings.Join(pt.AllowedOrigins, "\n"),
		CallbackID: credential.CallbackEndpointID(pt.ID)}
	if p.Webhooks != nil {
		ep, err := p.Webhooks.Endpoint(ctx, p.DB, pt.ID, d.CallbackID)
		if err != nil && !apperr.Is(err, apperr.CodeNotFound) {
			p.fail(w, r, err, 0, "")
			return
		}
		d.Callback = ep
	}
	for _, t := range event.Types {
		c := eventChoice{Type: t}
		if d.Callback != nil {
			for _, s := range d.Callback.EventTypes {
				c.Checked = c.Checked || s == t
			}
		}
		d.EventTypes = append(d.EventTypes, c)
	}
	p.render(w, r, status, "api-access", &view{Title: "API access", Nav: "api-access", Notice: notice, Error: errMsg, Data: d})
}

// apiAccessError shows a refusal on the page (4xx with the service's safe
// message), or the generic failure page.
func (p *Portal) apiAccessError(w http.ResponseWriter, r *http.Request, err error) {
	if e := apperr.As(err); e != nil {
		p.apiAccessPage(w, r, apperr.Lookup(e.Code).Status, "", e.Message, nil)
		return
	}
	p.fail(w, r, err, 0, "")
}

func (p *Portal) record(ctx context.Context, tx bun.IDB, me *signedIn, action, target string, before, after any) error {
	_, err := p.Audit.RecordTx(ctx, tx, audit.Change{Realm: audit.RealmPartner, RealmID: me.Partner.ID, Actor: me.actor(),
		Action: action, Target: target, Before: before, After: after})
	return err
}

func (p *Portal) created(me *signedIn, c *credential.Created) *createdCredential {
	return &createdCredential{ID: c.Credential.ID, Kind: c.Credential.Kind, APIKey: c.APIKey, PrivateKeyPEM: c.PrivateKeyPEM,
		PublicKey: c.PublicKey, Secret: c.Secret, PartnerSlug: me.Partner.Slug, PartnerID: me.Partner.ID}
}

// createCredential creates a record of the form's kind (ed25519 when
// absent: the page's first form).
func (p *Portal) createCredential(w http.ResponseWriter, r *http.Request) {
	me := current(r)
	kind := r.PostFormValue("kind")
	if kind == "" {
		kind = partner.KindEd25519
	}
	params := credential.CreateParams{Kind: kind, Description: r.PostFormValue("description"), PublicKey: r.PostFormValue("publicKey")}
	var c *credential.Created
	err := p.DB.RunInTx(r.Context(), nil, func(ctx context.Context, tx bun.Tx) error {
		var err error
		if c, err = p.Credentials.CreateTx(ctx, tx, me.Partner.ID, params); err != nil {
			return err
		}
		return p.record(ctx, tx, me, "credential.create", "credential "+c.Credential.ID.String(), nil, credential.State(c.Credential))
	})
	if err != nil {
		p.apiAccessError(w, r, err)
		return
	}
	msg := "API access created. Copy the API key now: it is never shown again."
	if kind != partner.KindEd25519 {
		msg = "Secret created. Copy it now: it is never shown again."
	}
	p.apiAccessPage(w, r, http.StatusCreated, msg, "", p.created(me, c))
}

func (p *Portal) enableCredential(enabled bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		me := current(r)
		id, err := parseID(r)
		if err == nil {
			err = p.DB.RunInTx(r.Context(), nil, func(ctx context.Context, tx bun.Tx) error {
				// A portal user signs no API request: uuid.Nil.
				before, after, err := p.Credentials.SetEnabledTx(ctx, tx, me.Partner.ID, id, enabled, uuid.Nil)
				if err != nil {
					return err
				}
				action := "credential.disable"
				if enabled {
					action = "credential.enable"
				}
				return p.record(ctx, tx, me, action, "credential "+id.String(), credential.State(before), credential.State(after))
			})
		}
		if err != nil {
			p.apiAccessError(w, r, err)
			return
		}
		p.apiAccessPage(w, r, http.StatusOK, "Saved.", "", nil)
	}
}

// rotateCredential replaces a credential with a new one of its kind (a new
// pair, API key or secret, shown once) and disables the old one in the
// same transaction; with keepOld the old one stays enabled for an overlap.
func (p *Portal) rotateCredential(w http.ResponseWriter, r *http.Request) {
	me := current(r)
	id, err := parseID(r)
	keep := r.PostFormValue("keepOld") == "on"
	var c *credential.Created
	if err == nil {
		err = p.DB.RunInTx(r.Context(), nil, func(ctx context.Context, tx bun.Tx) error {
			old, created, err := p.Credentials.RotateTx(ctx, tx, me.Partner.ID, id, credential.RotateParams{KeepOld: keep}, uuid.Nil)
			if err != nil {
				return err
			}
			c = created
			before := credential.State(old)
			if !keep {
				old.Enabled = false
			}
			return p.record(ctx, tx, me, "credential.rotate", "credential "+old.ID.String(), before,
				map[string]any{"old": credential.State(old), "new": credential.State(created.Credential)})
		})
	}
	if err != nil {
		p.apiAccessError(w, r, err)
		return
	}
	msg := "Rotated: the old record is disabled. Copy the new credential now: it is never shown again."
	if keep {
		msg = "Rotated: the old record stays enabled until you disable it. Copy the new credential now: it is never shown again."
	}
	p.apiAccessPage(w, r, http.StatusCreated, msg, "", p.created(me, c))
}

// setOrigins replaces the allowed origins (one per line or comma
// separated); empty allows any origin.
func (p *Portal) setOrigins(w http.ResponseWriter, r *http.Request) {
	me := current(r)
	var list []string
	for _, f := range strings.FieldsFunc(r.PostFormValue("allowedOrigins"), func(c rune) bool { return c == '\n' || c == ',' || c == '\r' }) {
		if f = strings.TrimSpace(f); f != "" {
			list = append(list, f)
		}
	}
	if list == nil {
		list = []string{}
	}
	err := p.DB.RunInTx(r.Context(), nil, func(ctx context.Context, tx bun.Tx) error {
		before := me.Partner.AllowedOrigins
		after, err := p.Credentials.SetAllowedOriginsTx(ctx, tx, me.Partner.ID, list, nil)
		if err != nil {
			return err
		}
		return p.record(ctx, tx, me, "partner.allowed_origins", "partner "+me.Partner.Slug,
			map[string]any{"allowedOrigins": before}, map[string]any{"allowedOrigins": after.AllowedOrigins})
	})
	if err != nil {
		p.apiAccessError(w, r, err)
		return
	}
	p.apiAccessPage(w, r, http.StatusOK, "Allowed origins saved.", "", nil)
}

// setCallback creates or updates the callback URL: the webhook endpoint
// with the partner's callback id (credential.CallbackEndpointID), so the
// REST API reaches it as PUT /integrations/webhook-endpoints/{id}.
func (p *Portal) setCallback(w http.ResponseWriter, r *http.Request) {
	me := current(r)
	if err := r.ParseForm(); err != nil {
		p.fail(w, r, nil, http.StatusBadRequest, "The form could not be read.")
		return
	}
	params := webhook.EndpointParams{URL: strings.TrimSpace(r.PostForm.Get("url")), Description: credential.CallbackDescription,
		EventTypes: r.PostForm["eventTypes"], Enabled: r.PostForm.Get("enabled") == "on"}
	id := credential.CallbackEndpointID(me.Partner.ID)
	var secret string
	err := p.DB.RunInTx(r.Context(), nil, func(ctx context.Context, tx bun.Tx) error {
		before, err := p.Webhooks.Endpoint(ctx, tx, me.Partner.ID, id)
		if err != nil && !apperr.Is(err, apperr.CodeNotFound) {
			return err
		}
		ep, s, _, err := p.Webhooks.PutEndpointTx(ctx, tx, me.Partner.ID, id, params)
		if err != nil {
			return err
		}
		secret = s
		var b any
		if before != nil {
			b = endpointState(before)
		}
		return p.record(ctx, tx, me, "webhook_endpoint.put", "webhook endpoint "+id.String(), b, endpointState(ep))
	})
	if err != nil {
		p.apiAccessError(w, r, err)
		return
	}
	var created *createdCredential
	msg := "Callback URL saved."
	if secret != "" {
		created = &createdCredential{WebhookSecret: secret, PartnerSlug: me.Partner.Slug, PartnerID: me.Partner.ID}
		msg = "Callback URL saved. Copy its signing secret now: it is never shown again."
	}
	p.apiAccessPage(w, r, http.StatusOK, msg, "", created)
}
