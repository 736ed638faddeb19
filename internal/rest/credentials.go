package rest

import (
	"context"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/auth"
	"github.com/perkshq/perks/internal/credential"
	"github.com/perkshq/perks/internal/partner"
)

// registerCredentials mounts the partner's own credential management (issue
// 16): what the portal's API access and Consumer authentication pages do,
// for automation. Every write goes through PartnerWrite (signed with an
// existing credential, one transaction, audited by the REST audit hook,
// Idempotency-Key replay). Answers that show a secret or a private key
// store a copy without it for retries (StoreInstead), so no secret is kept
// at rest and a retry never shows it again (secretNote says so).
func (a *API) registerCredentials(rt *Router) {
	rt.Handle(http.MethodGet, "/integrations/credentials", a.Partner(a.listCredentials))
	rt.Handle(http.MethodPost, "/integrations/credentials", a.PartnerWrite(a.createCredential))
	rt.Handle(http.MethodPost, "/integrations/credentials/{id}/enable", a.PartnerWrite(a.enableCredential(true)))
	rt.Handle(http.MethodPost, "/integrations/credentials/{id}/disable", a.PartnerWrite(a.enableCredential(false)))
	rt.Handle(http.MethodPost, "/integrations/credentials/{id}/rotate", a.PartnerWrite(a.rotateCredential))
	rt.Handle(http.MethodGet, "/integrations/consumer-keys", a.Partner(a.listConsumerKeys))
	rt.Handle(http.MethodPost, "/integrations/consumer-keys", a.PartnerWrite(a.addConsumerKey))
	rt.Handle(http.MethodPost, "/integrations/consumer-keys/{kid}/enable", a.PartnerWrite(a.enableConsumerKey(true)))
	rt.Handle(http.MethodPost, "/integrations/consumer-keys/{kid}/disable", a.PartnerWrite(a.enableConsumerKey(false)))
	rt.Handle(http.MethodPost, "/integrations/consumer-keys/{kid}/rotate", a.PartnerWrite(a.rotateConsumerKey))
	rt.Handle(http.MethodPut, "/integrations/consumer-jwks", a.PartnerWrite(a.putJWKS))
	rt.Handle(http.MethodDelete, "/integrations/consumer-jwks", a.PartnerWrite(a.deleteJWKS))
	rt.Handle(http.MethodGet, "/integrations/allowed-origins", a.Partner(a.getAllowedOrigins))
	rt.Handle(http.MethodPut, "/integrations/allowed-origins", a.PartnerWrite(a.putAllowedOrigins))
	// Testing a token changes nothing: a signed read, never audited (its
	// body is a live credential of an end user).
	rt.Handle(http.MethodPost, "/integrations/consumer-tokens/verify", a.Partner(a.verifyConsumerToken))
}

// shownOnceNote replaces a secret or private key in a replayed answer.
const shownOnceNote = "the secret was shown once, in the answer to the original request, and is not stored with it; if it was lost, rotate the credential"

type credentialView struct {
	ID          uuid.UUID  `json:"id"`
	Kind        string     `json:"kind"`
	Description string     `json:"description"`
	Enabled     bool       `json:"enabled"`
	PublicKey   *string    `json:"publicKey"`
	CreatedAt   time.Time  `json:"createdAt"`
	LastUsedAt  *time.Time `json:"lastUsedAt"`
}

func newCredentialView(c *partner.Credential) credentialView {
	v := credentialView{ID: c.ID, Kind: c.Kind, Description: c.Description, Enabled: c.Enabled, CreatedAt: c.CreatedAt, LastUsedAt: c.LastUsedAt}
	if s, ok := credential.State(c)["publicKey"].(string); ok {
		v.PublicKey = &s
	}
	return v
}

// createdCredentialView is a new credential with what is shown once.
type createdCredentialView struct {
	credentialView
	// PartnerID is the request JWT's iss (seed 001).
	PartnerID     uuid.UUID `json:"partnerId"`
	APIKey        string    `json:"apiKey,omitempty"`
	PrivateKeyPEM string    `json:"privateKey,omitempty"`
	Secret        string    `json:"secret,omitempty"`
	SecretNote    string    `json:"secretNote,omitempty"`
	// Replaced is the credential a rotation replaced.
	Replaced *credentialView `json:"replaced,omitempty"`
}

func (a *API) listCredentials(w http.ResponseWriter, r *http.Request, p *auth.PartnerPrincipal) error {
	creds, err := a.Credentials.List(r.Context(), a.DB.Bun, p.Partner.ID)
	if err != nil {
		return err
	}
	out := make([]credentialView, len(creds))
	for i := range creds {
		out[i] = newCredentialView(&creds[i])
	}
	WriteJSON(w, http.StatusOK, map[string]any{"items": out})
	return nil
}

type credentialRequest struct {
	Kind        string `json:"kind"`
	Description string `json:"description"`
	PublicKey   string `json:"publicKey"`
	Secret      string `json:"secret"`
}

// shownOnce answers with the created credential and stores, for retries,
// the same answer without its secrets.
func shownOnce(w *Write, p *auth.PartnerPrincipal, c *credential.Created, replaced *partner.Credential) createdCredentialView {
	v := createdCredentialView{credentialView: newCredentialView(c.Credential), PartnerID: p.Partner.ID}
	if replaced != nil {
		rv := newCredentialView(replaced)
		v.Replaced = &rv
	}
	stored := v
	if c.APIKey != "" || c.PrivateKeyPEM != "" || c.Secret != "" {
		stored.SecretNote = shownOnceNote
	}
	w.StoreInstead(stored)
	v.APIKey, v.PrivateKeyPEM, v.Secret = c.APIKey, c.PrivateKeyPEM, c.Secret
	return v
}

func (a *API) createCredential(w *Write) (int, any, error) {
	var req credentialRequest
	if err := DecodeJSON(w.R, w.Body, &req); err != nil {
		return 0, nil, err
	}
	c, err := a.Credentials.CreateTx(w.Ctx, w.Tx, w.Partner.Partner.ID, credential.CreateParams{
		Kind: req.Kind, Description: req.Description, PublicKey: req.PublicKey, Secret: req.Secret})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, shownOnce(w, w.Partner, c, nil), nil
}

func (a *API) enableCredential(enabled bool) WriteHandler {
	return func(w *Write) (int, any, error) {
		id, err := pathUUID(w.R, "id")
		if err != nil {
			return 0, nil, apperr.New(apperr.CodeNotFound, "credential not found")
		}
		_, after, err := a.Credentials.SetEnabledTx(w.Ctx, w.Tx, w.Partner.Partner.ID, id, enabled, w.Partner.CredentialID)
		if err != nil {
			return 0, nil, err
		}
		return http.StatusOK, newCredentialView(after), nil
	}
}

type credentialRotateRequest struct {
	KeepOld   bool   `json:"keepOld"`
	PublicKey string `json:"publicKey"`
	Secret    string `json:"secret"`
}

func (a *API) rotateCredential(w *Write) (int, any, error) {
	id, err := pathUUID(w.R, "id")
	if err != nil {
		return 0, nil, apperr.New(apperr.CodeNotFound, "credential not found")
	}
	var req credentialRotateRequest
	if len(w.Body) > 0 {
		if err := DecodeJSON(w.R, w.Body, &req); err != nil {
			return 0, nil, err
		}
	}
	old, c, err := a.Credentials.RotateTx(w.Ctx, w.Tx, w.Partner.Partner.ID, id,
		credential.RotateParams{KeepOld: req.KeepOld, PublicKey: req.PublicKey, Secret: req.Secret}, w.Partner.CredentialID)
	if err != nil {
		return 0, nil, err
	}
	if !req.KeepOld {
		old.Enabled = false
	}
	return http.StatusCreated, shownOnce(w, w.Partner, c, old), nil
}

type consumerKeyView struct {
	Kid         string    `json:"kid"`
	Algorithm   string    `json:"algorithm"`
	Description string    `json:"description"`
	Enabled     bool      `json:"enabled"`
	PublicKey   *string   `json:"publicKey"`
	NoExpMaxAge *int      `json:"noExpMaxAgeSeconds"`
	CreatedAt   time.Time `json:"createdAt"`
	UpdatedAt   time.Time `json:"updatedAt"`
}

func newConsumerKeyView(k *partner.ConsumerKey) consumerKeyView {
	return consumerKeyView{Kid: k.Kid, Algorithm: k.Algorithm, Description: k.Description, Enabled: k.Enabled,
		PublicKey: k.PublicKeyPEM, NoExpMaxAge: k.NoExpMaxAgeSeconds, CreatedAt: k.CreatedAt, UpdatedAt: k.UpdatedAt}
}

type jwksView struct {
	URL         string `json:"url"`
	Description string `json:"description"`
	Enabled     bool   `json:"enabled"`
}

func newJWKSView(p *partner.Partner) *jwksView {
	j := credential.JWKSOf(p)
	if j == nil {
		return nil
	}
	return &jwksView{URL: j.URL, Description: j.Description, Enabled: j.Enabled}
}

func (a *API) listConsumerKeys(w http.ResponseWriter, r *http.Request, p *auth.PartnerPrincipal) error {
	keys, err := a.Partners.ListConsumerKeys(r.Context(), a.DB.Bun, p.Partner.ID)
	if err != nil {
		return err
	}
	out := make([]consumerKeyView, len(keys))
	for i := range keys {
		out[i] = newConsumerKeyView(&keys[i])
	}
	WriteJSON(w, http.StatusOK, map[string]any{"items": out, "jwks": newJWKSView(p.Partner)})
	return nil
}

type consumerKeyRequest struct {
	Kid                string `json:"kid"`
	Description        string `json:"description"`
	Algorithm          string `json:"algorithm"`
	PublicKey          string `json:"publicKey"`
	Secret             string `json:"secret"`
	GenerateSecret     bool   `json:"generateSecret"`
	NoExpMaxAgeSeconds *int   `json:"noExpMaxAgeSeconds"`
	// Enabled (default true) adds the key switched off when false.
	Enabled *bool `json:"enabled"`
	// KeepOld (rotate only) keeps the old key enabled for an overlap.
	KeepOld bool `json:"keepOld"`
}

func (r *consumerKeyRequest) params() (credential.KeyParams, error) {
	p := credential.KeyParams{Kid: r.Kid, Description: r.Description, Algorithm: r.Algorithm, PublicKeyPEM: r.PublicKey,
		Secret: r.Secret, GenerateSecret: r.GenerateSecret, Disabled: r.Enabled != nil && !*r.Enabled}
	if r.NoExpMaxAgeSeconds != nil {
		if *r.NoExpMaxAgeSeconds < 0 || *r.NoExpMaxAgeSeconds > 366*24*3600 {
			return p, apperr.Field(apperr.CodeInvalidField, "noExpMaxAgeSeconds", "noExpMaxAgeSeconds is 0 (exp required) to 31622400")
		}
		p.NoExpMaxAge = time.Duration(*r.NoExpMaxAgeSeconds) * time.Second
	}
	return p, nil
}

type addedKeyView struct {
	consumerKeyView
	Secret     string `json:"secret,omitempty"`
	SecretNote string `json:"secretNote,omitempty"`
	// SharedKid warns that another partner uses the kid: tokens need iss
	// or X-Partner-Slug to find you.
	SharedKid bool             `json:"sharedKid"`
	Replaced  *consumerKeyView `json:"replaced,omitempty"`
}

func addedKey(w *Write, k *credential.AddedKey, replaced *partner.ConsumerKey) addedKeyView {
	v := addedKeyView{consumerKeyView: newConsumerKeyView(k.Key), SharedKid: k.SharedKid}
	if replaced != nil {
		rv := newConsumerKeyView(replaced)
		v.Replaced = &rv
	}
	stored := v
	if k.Secret != "" {
		stored.SecretNote = shownOnceNote
	}
	w.StoreInstead(stored)
	v.Secret = k.Secret
	return v
}

func (a *API) addConsumerKey(w *Write) (int, any, error) {
	var req consumerKeyRequest
	if err := DecodeJSON(w.R, w.Body, &req); err != nil {
		return 0, nil, err
	}
	if req.KeepOld {
		return 0, nil, apperr.Field(apperr.CodeInvalidField, "keepOld", "keepOld applies to rotations only")
	}
	params, err := req.params()
	if err != nil {
		return 0, nil, err
	}
	k, err := a.Credentials.AddKeyTx(w.Ctx, w.Tx, w.Partner.Partner.ID, params)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, addedKey(w, k, nil), nil
}

func (a *API) enableConsumerKey(enabled bool) WriteHandler {
	return func(w *Write) (int, any, error) {
		_, after, err := a.Credentials.SetKeyEnabledTx(w.Ctx, w.Tx, w.Partner.Partner.ID, w.R.PathValue("kid"), enabled)
		if err != nil {
			return 0, nil, err
		}
		return http.StatusOK, newConsumerKeyView(after), nil
	}
}

func (a *API) rotateConsumerKey(w *Write) (int, any, error) {
	var req consumerKeyRequest
	if err := DecodeJSON(w.R, w.Body, &req); err != nil {
		return 0, nil, err
	}
	params, err := req.params()
	if err != nil {
		return 0, nil, err
	}
	old, k, err := a.Credentials.RotateKeyTx(w.Ctx, w.Tx, w.Partner.Partner.ID, w.R.PathValue("kid"), params, req.KeepOld)
	if err != nil {
		return 0, nil, err
	}
	if !req.KeepOld {
		old.Enabled = false
	}
	return http.StatusCreated, addedKey(w, k, old), nil
}

type jwksRequest struct {
	URL         string `json:"url"`
	Description string `json:"description"`
	Enabled     *bool  `json:"enabled"`
}

func (a *API) putJWKS(w *Write) (int, any, error) {
	var req jwksRequest
	if err := DecodeJSON(w.R, w.Body, &req); err != nil {
		return 0, nil, err
	}
	j := credential.JWKS{URL: req.URL, Description: req.Description, Enabled: req.Enabled == nil || *req.Enabled}
	p, err := a.Credentials.SetJWKSTx(w.Ctx, w.Tx, w.Partner.Partner.ID, j)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, newJWKSView(p), nil
}

func (a *API) deleteJWKS(w *Write) (int, any, error) {
	if err := a.Credentials.RemoveJWKSTx(w.Ctx, w.Tx, w.Partner.Partner.ID); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}

// maxTestedToken is the longest token the tester takes: consumer calls
// refuse longer ones anyway (auth's 8 KiB).
const maxTestedToken = 8 << 10

type verifyTokenRequest struct {
	Token string `json:"token"`
}

// verifyConsumerToken is the token tester: which checks a consumer token
// passes as this partner's. It answers 200 whatever the verdict (the
// verdict is the answer); the token is never logged nor echoed.
func (a *API) verifyConsumerToken(w http.ResponseWriter, r *http.Request, p *auth.PartnerPrincipal) error {
	var req verifyTokenRequest
	if err := DecodeJSON(r, Body(r.Context()), &req); err != nil {
		return err
	}
	if req.Token == "" {
		return apperr.Field(apperr.CodeMissingField, "token", "token is required")
	}
	if len(req.Token) > maxTestedToken {
		return apperr.Field(apperr.CodeInvalidField, "token", "a consumer token is at most %d bytes", maxTestedToken)
	}
	rep, err := a.ConsumerAuth.Inspect(r.Context(), p.Partner, req.Token)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	WriteJSON(w, http.StatusOK, rep)
	return nil
}

type allowedOriginsBody struct {
	AllowedOrigins []string `json:"allowedOrigins"`
}

func (a *API) getAllowedOrigins(w http.ResponseWriter, r *http.Request, p *auth.PartnerPrincipal) error {
	list := p.Partner.AllowedOrigins
	if list == nil {
		list = []string{}
	}
	WriteJSON(w, http.StatusOK, allowedOriginsBody{AllowedOrigins: list})
	return nil
}

// putAllowedOrigins replaces the allowed origins; a list that would refuse
// this very request's address is refused (ALLOWED_ORIGINS_LOCKOUT).
func (a *API) putAllowedOrigins(w *Write) (int, any, error) {
	var req allowedOriginsBody
	if err := DecodeJSON(w.R, w.Body, &req); err != nil {
		return 0, nil, err
	}
	if req.AllowedOrigins == nil {
		return 0, nil, apperr.Field(apperr.CodeMissingField, "allowedOrigins", "allowedOrigins is required (an empty list allows any origin)")
	}
	ip := ClientIP(w.R, a.TrustedProxies)
	check := func(ctx context.Context, list []string) error {
		if a.PartnerAuth.Origins == nil {
			return nil
		}
		return a.PartnerAuth.Origins.Check(ctx, list, ip)
	}
	p, err := a.Credentials.SetAllowedOriginsTx(w.Ctx, w.Tx, w.Partner.Partner.ID, req.AllowedOrigins, check)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, allowedOriginsBody{AllowedOrigins: p.AllowedOrigins}, nil
}
