package portal

import (
	"context"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/account"
	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/auth"
	"github.com/perkshq/perks/internal/credential"
	"github.com/perkshq/perks/internal/partner"
)

// The Consumer authentication page is seed 002's Authentication tab: the
// keys that verify the partner's consumer tokens (PEM public keys with a
// description and an enabled toggle, seed 003's HS256 secrets, a JWKS
// URL), their kid and algorithm, rotation, and a token tester that shows
// which check a pasted token passes or fails. It calls internal/credential
// and auth.ConsumerAuthenticator.Inspect, the same methods as
// /integrations/consumer-keys and /integrations/consumer-tokens/verify.

func init() {
	pages["consumer-auth"] = template.Must(template.New("layout.html").Funcs(funcs).ParseFS(files, "templates/layout.html", "templates/consumer-auth.html"))
}

// registerCredentials mounts the pages of this file and the API access
// page's forms beyond its first (secrets, origins, callback URL).
func (p *Portal) registerCredentials(h func(string, http.HandlerFunc)) {
	h("POST "+Path+"/api-access/origins", p.authed(account.PermCredentials, p.setOrigins))
	h("POST "+Path+"/api-access/callback", p.authed(account.PermCredentials, p.setCallback))
	h("GET "+Path+"/consumer-auth", p.authed(account.PermView, p.consumerAuth))
	h("POST "+Path+"/consumer-auth/keys", p.authed(account.PermCredentials, p.addConsumerKey))
	h("POST "+Path+"/consumer-auth/keys/enable", p.authed(account.PermCredentials, p.enableConsumerKey(true)))
	h("POST "+Path+"/consumer-auth/keys/disable", p.authed(account.PermCredentials, p.enableConsumerKey(false)))
	h("POST "+Path+"/consumer-auth/keys/rotate", p.authed(account.PermCredentials, p.rotateConsumerKey))
	h("POST "+Path+"/consumer-auth/jwks", p.authed(account.PermCredentials, p.setJWKS))
	h("POST "+Path+"/consumer-auth/jwks/remove", p.authed(account.PermCredentials, p.removeJWKS))
	h("POST "+Path+"/consumer-auth/test", p.authed(account.PermCredentials, p.testToken))
}

type consumerAuthData struct {
	Keys []partner.ConsumerKey
	JWKS *credential.JWKS
	// Secret is a generated HS256 secret, shown once.
	Secret    string
	SecretKid string
	SharedKid string
	Report    *auth.TokenReport
	Issuer    string
	Slug      string
}

func (p *Portal) consumerAuth(w http.ResponseWriter, r *http.Request) {
	p.consumerAuthPage(w, r, http.StatusOK, "", "", consumerAuthData{})
}

func (p *Portal) consumerAuthPage(w http.ResponseWriter, r *http.Request, status int, notice, errMsg string, d consumerAuthData) {
	me := current(r)
	ctx := r.Context()
	keys, err := p.Partners.ListConsumerKeys(ctx, p.DB, me.Partner.ID)
	if err != nil {
		p.fail(w, r, err, 0, "")
		return
	}
	pt, err := p.Partners.ByID(ctx, p.DB, me.Partner.ID)
	if err != nil {
		p.fail(w, r, err, 0, "")
		return
	}
	d.Keys, d.JWKS, d.Slug = keys, credential.JWKSOf(pt), pt.Slug
	if pt.Issuer != nil {
		d.Issuer = *pt.Issuer
	}
	p.render(w, r, status, "consumer-auth", &view{Title: "Consumer authentication", Nav: "consumer-auth", Notice: notice, Error: errMsg, Data: d})
}

func (p *Portal) consumerAuthError(w http.ResponseWriter, r *http.Request, err error) {
	if e := apperr.As(err); e != nil {
		p.consumerAuthPage(w, r, apperr.Lookup(e.Code).Status, "", e.Message, consumerAuthData{})
		return
	}
	p.fail(w, r, err, 0, "")
}

// keyParams reads a key form: a PEM public key, an HS256 secret, or "generate".
func keyParams(r *http.Request, prefix string) (credential.KeyParams, error) {
	f := func(name string) string { return r.PostFormValue(prefix + name) }
	kp := credential.KeyParams{Kid: strings.TrimSpace(f("kid")), Description: f("description"), Algorithm: f("algorithm")}
	switch f("material") {
	case "secret":
		kp.Secret = f("secret")
	case "generate":
		kp.GenerateSecret = true
	default:
		kp.PublicKeyPEM = f("publicKey")
	}
	if v := strings.TrimSpace(f("noExpMaxAgeHours")); v != "" {
		h, err := strconv.Atoi(v)
		if err != nil || h < 0 || h > 366*24 {
			return kp, apperr.Field(apperr.CodeInvalidField, "noExpMaxAgeHours", "the maximum age is a whole number of hours, 0 to 8784")
		}
		kp.NoExpMaxAge = time.Duration(h) * time.Hour
	}
	return kp, nil
}

func (p *Portal) addConsumerKey(w http.ResponseWriter, r *http.Request) {
	me := current(r)
	kp, err := keyParams(r, "")
	enabled := r.PostFormValue("enabled") == "on"
	var added *credential.AddedKey
	if err == nil {
		err = p.DB.RunInTx(r.Context(), nil, func(ctx context.Context, tx bun.Tx) error {
			var err error
			kp.Disabled = !enabled
			if added, err = p.Credentials.AddKeyTx(ctx, tx, me.Partner.ID, kp); err != nil {
				return err
			}
			return p.record(ctx, tx, me, "consumer_key.add", "consumer key "+kp.Kid, nil, credential.KeyState(added.Key))
		})
	}
	if err != nil {
		p.consumerAuthError(w, r, err)
		return
	}
	d := consumerAuthData{Secret: added.Secret, SecretKid: added.Key.Kid}
	if added.SharedKid {
		d.SharedKid = added.Key.Kid
	}
	p.consumerAuthPage(w, r, http.StatusCreated, "Key "+added.Key.Kid+" added ("+added.Key.Algorithm+").", "", d)
}

func (p *Portal) enableConsumerKey(enabled bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		me := current(r)
		kid := r.PostFormValue("kid")
		err := p.DB.RunInTx(r.Context(), nil, func(ctx context.Context, tx bun.Tx) error {
			before, after, err := p.Credentials.SetKeyEnabledTx(ctx, tx, me.Partner.ID, kid, enabled)
			if err != nil {
				return err
			}
			action := "consumer_key.disable"
			if enabled {
				action = "consumer_key.enable"
			}
			return p.record(ctx, tx, me, action, "consumer key "+kid, credential.KeyState(before), credential.KeyState(after))
		})
		if err != nil {
			p.consumerAuthError(w, r, err)
			return
		}
		p.consumerAuthPage(w, r, http.StatusOK, "Saved.", "", consumerAuthData{})
	}
}

func (p *Portal) rotateConsumerKey(w http.ResponseWriter, r *http.Request) {
	me := current(r)
	old := r.PostFormValue("oldKid")
	keep := r.PostFormValue("keepOld") == "on"
	kp, err := keyParams(r, "new-")
	var added *credential.AddedKey
	if err == nil {
		err = p.DB.RunInTx(r.Context(), nil, func(ctx context.Context, tx bun.Tx) error {
			prev, a, err := p.Credentials.RotateKeyTx(ctx, tx, me.Partner.ID, old, kp, keep)
			if err != nil {
				return err
			}
			added = a
			before := credential.KeyState(prev)
			if !keep {
				prev.Enabled = false
			}
			return p.record(ctx, tx, me, "consumer_key.rotate", "consumer key "+old, before,
				map[string]any{"old": credential.KeyState(prev), "new": credential.KeyState(a.Key)})
		})
	}
	if err != nil {
		p.consumerAuthError(w, r, err)
		return
	}
	msg := "Key " + added.Key.Kid + " added; " + old + " is disabled."
	if keep {
		msg = "Key " + added.Key.Kid + " added; " + old + " stays enabled until you disable it."
	}
	p.consumerAuthPage(w, r, http.StatusCreated, msg, "", consumerAuthData{Secret: added.Secret, SecretKid: added.Key.Kid})
}

func (p *Portal) setJWKS(w http.ResponseWriter, r *http.Request) {
	me := current(r)
	j := credential.JWKS{URL: r.PostFormValue("url"), Description: r.PostFormValue("description"), Enabled: r.PostFormValue("enabled") == "on"}
	err := p.DB.RunInTx(r.Context(), nil, func(ctx context.Context, tx bun.Tx) error {
		before := credential.JWKSOf(me.Partner)
		pt, err := p.Credentials.SetJWKSTx(ctx, tx, me.Partner.ID, j)
		if err != nil {
			return err
		}
		return p.record(ctx, tx, me, "consumer_jwks.put", "partner "+me.Partner.Slug, before, credential.JWKSOf(pt))
	})
	if err != nil {
		p.consumerAuthError(w, r, err)
		return
	}
	p.consumerAuthPage(w, r, http.StatusOK, "JWKS URL saved.", "", consumerAuthData{})
}

func (p *Portal) removeJWKS(w http.ResponseWriter, r *http.Request) {
	me := current(r)
	err := p.DB.RunInTx(r.Context(), nil, func(ctx context.Context, tx bun.Tx) error {
		before := credential.JWKSOf(me.Partner)
		if err := p.Credentials.RemoveJWKSTx(ctx, tx, me.Partner.ID); err != nil {
			return err
		}
		return p.record(ctx, tx, me, "consumer_jwks.remove", "partner "+me.Partner.Slug, before, nil)
	})
	if err != nil {
		p.consumerAuthError(w, r, err)
		return
	}
	p.consumerAuthPage(w, r, http.StatusOK, "JWKS URL removed.", "", consumerAuthData{})
}

// testToken runs the token tester. The token is neither logged, audited
// nor put back in the page (its textarea comes back empty).
func (p *Portal) testToken(w http.ResponseWriter, r *http.Request) {
	me := current(r)
	tok := strings.TrimSpace(r.PostFormValue("token"))
	if tok == "" {
		p.consumerAuthPage(w, r, http.StatusBadRequest, "", "Paste a token to test.", consumerAuthData{})
		return
	}
	rep, err := p.ConsumerAuth.Inspect(r.Context(), me.Partner, tok)
	if err != nil {
		p.consumerAuthError(w, r, err)
		return
	}
	p.consumerAuthPage(w, r, http.StatusOK, "", "", consumerAuthData{Report: rep})
}
