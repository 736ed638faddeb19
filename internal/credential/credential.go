// Package credential holds the rules for managing a partner's credentials
// from outside the shell: the partner back end's API credentials (HMAC
// secrets, Ed25519 API access records, request-JWT secrets) and the keys
// that verify its consumer tokens (PEM public keys, HS256 secrets, a JWKS
// URL). The partner REST API (/integrations/credentials,
// /integrations/consumer-keys) and the portal's API access and Consumer
// authentication pages call these same methods; internal/partner stores
// the rows, this package decides what a change may do.
//
// Rules shared by both transports:
//   - secrets and private keys are returned once, by the call that makes
//     them, and never stored in clear, logged, audited or put in an error;
//   - bad input is refused with a field error and changes nothing;
//   - a partner never locks its back end out by accident: disabling the
//     credential that signs the request (or rotating it without keeping
//     it for an overlap) is refused with CREDENTIAL_IN_USE.
package credential

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/partner"
	"github.com/perkshq/perks/internal/textcheck"
)

// MaxDescription bounds descriptions (characters), as the portal's form does.
const MaxDescription = 200

// Shared secrets a partner uploads are 16 to 512 bytes (HMAC and request
// JWT); HS256 consumer secrets at least 32 (partner.UpsertConsumerKey).
const (
	minSharedSecret = 16
	maxSecret       = 512
)

// Service manages credentials; it is stateless apart from its settings.
type Service struct {
	Partners *partner.Service
	// AllowHTTPJWKS accepts http:// JWKS URLs (development only, like
	// auth.JWKS.AllowHTTP); production requires https://.
	AllowHTTPJWKS bool
}

// Kinds lists the partner credential kinds.
var Kinds = []string{partner.KindHMAC, partner.KindEd25519, partner.KindRequestJWT}

func checkDescription(field, s string) (string, error) {
	s = strings.TrimSpace(s)
	if utf8.RuneCountInString(s) > MaxDescription {
		return "", apperr.Field(apperr.CodeInvalidField, field, "the description is at most %d characters", MaxDescription)
	}
	if err := textcheck.Line(field, s); err != nil {
		return "", err
	}
	return s, nil
}

// CreateParams describes a new partner credential.
type CreateParams struct {
	Kind        string
	Description string
	// PublicKey (ed25519 only): the partner's own public key, PEM or the
	// base64 of its 32 bytes; empty generates a pair whose private key is
	// returned once.
	PublicKey string
	// Secret (hmac and request_jwt only): the partner's own secret; empty
	// generates one, returned once.
	Secret string
}

// Created is a new credential with what is shown once.
type Created struct {
	Credential *partner.Credential
	// APIKey and PrivateKeyPEM (ed25519): the X-API-Key value, and the
	// PKCS#8 private key when Perks generated the pair.
	APIKey        string
	PrivateKeyPEM string
	// PublicKey is the Ed25519 public key, base64.
	PublicKey string
	// Secret is a generated shared secret (hmac, request_jwt); empty when
	// the partner gave its own, which is never echoed.
	Secret string
}

func (p *CreateParams) validate() error {
	d, err := checkDescription("description", p.Description)
	if err != nil {
		return err
	}
	p.Description = d
	switch p.Kind {
	case partner.KindEd25519:
		if p.Secret != "" {
			return apperr.Field(apperr.CodeInvalidField, "secret", "an ed25519 credential has no shared secret: give a publicKey or nothing")
		}
	case partner.KindHMAC, partner.KindRequestJWT:
		if strings.TrimSpace(p.PublicKey) != "" {
			return apperr.Field(apperr.CodeInvalidField, "publicKey", "only ed25519 credentials take a public key")
		}
		if p.Secret != "" && (len(p.Secret) < minSharedSecret || len(p.Secret) > maxSecret) {
			return apperr.Field(apperr.CodeInvalidField, "secret", "a shared secret is %d to %d bytes", minSharedSecret, maxSecret)
		}
		if p.Secret != "" {
			if err := textcheck.Line("secret", p.Secret); err != nil {
				return err
			}
		}
	case "":
		return apperr.Field(apperr.CodeMissingField, "kind", "kind is required: %s", strings.Join(Kinds, ", "))
	default:
		return apperr.Field(apperr.CodeInvalidField, "kind", "kind must be one of %s", strings.Join(Kinds, ", "))
	}
	return nil
}

// List returns the partner's credentials, oldest first (never secrets).
func (s *Service) List(ctx context.Context, db bun.IDB, partnerID uuid.UUID) ([]partner.Credential, error) {
	return s.Partners.ListCredentials(ctx, db, partnerID)
}

// Get loads one of the partner's credentials; another partner's id is
// NOT_FOUND, like an unknown one.
func (s *Service) Get(ctx context.Context, db bun.IDB, partnerID, id uuid.UUID) (*partner.Credential, error) {
	c := new(partner.Credential)
	err := db.NewSelect().Model(c).ExcludeColumn("secret_sealed").
		Where("partner_id = ? AND id = ?", partnerID, id).Limit(1).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apperr.New(apperr.CodeNotFound, "credential not found")
	}
	if err != nil {
		return nil, fmt.Errorf("load credential %s: %w", id, err)
	}
	return c, nil
}

// CreateTx validates p and creates the credential in db (the caller's
// transaction, where it also records the audit entry).
func (s *Service) CreateTx(ctx context.Context, db bun.IDB, partnerID uuid.UUID, p CreateParams) (*Created, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	if p.Kind == partner.KindEd25519 {
		var pub ed25519.PublicKey
		if text := strings.TrimSpace(p.PublicKey); text != "" {
			k, err := partner.ParseEd25519PublicKey(text)
			if err != nil {
				return nil, err
			}
			pub = k
		}
		c, err := s.Partners.CreateEd25519Credential(ctx, db, partnerID, p.Description, pub)
		if err != nil {
			return nil, err
		}
		return &Created{Credential: c.Credential, APIKey: c.APIKey, PrivateKeyPEM: c.PrivateKeyPEM,
			PublicKey: base64.StdEncoding.EncodeToString(c.PublicKey)}, nil
	}
	out := &Created{}
	secret := p.Secret
	if secret == "" {
		secret = partner.NewSecret()
		out.Secret = secret
	}
	c, err := s.Partners.AddSharedSecret(ctx, db, partnerID, p.Kind, p.Description, []byte(secret))
	if err != nil {
		return nil, err
	}
	out.Credential = c
	return out, nil
}

// errInUse refuses a change that would disable the credential signing the
// request.
func errInUse(what string) error {
	return apperr.New(apperr.CodeCredentialInUse,
		"this credential signed the request: %s would lock your back end out; rotate with keepOld, switch to the new credential, then disable this one with a request signed by the new one", what)
}

// SetEnabledTx switches a credential on or off and returns it before and
// after. signing is the credential that authenticated the caller (uuid.Nil
// for a portal user, who cannot lock a back end out of the portal):
// disabling it is refused with CREDENTIAL_IN_USE, so a partner never locks
// itself out of the API by accident.
func (s *Service) SetEnabledTx(ctx context.Context, db bun.IDB, partnerID, id uuid.UUID, enabled bool, signing uuid.UUID) (before, after *partner.Credential, err error) {
	c, err := s.Get(ctx, db, partnerID, id)
	if err != nil {
		return nil, nil, err
	}
	if !enabled && id == signing && c.Enabled {
		return nil, nil, errInUse("disabling it")
	}
	if err := s.Partners.SetCredentialEnabled(ctx, db, partnerID, id, enabled); err != nil {
		return nil, nil, err
	}
	a := *c
	a.Enabled = enabled
	return c, &a, nil
}

// RotateParams describe a rotation.
type RotateParams struct {
	// KeepOld leaves the old credential enabled for an overlap (every
	// scheme accepts several enabled credentials at once); the partner
	// disables it once its back end uses the new one. Without it the old
	// one is disabled in the same transaction.
	KeepOld bool
	// PublicKey / Secret: the partner's own new material (as in
	// CreateParams); empty generates it.
	PublicKey string
	Secret    string
}

// RotateTx creates a credential of the same kind and description as id
// and, unless KeepOld, disables id in the same transaction. Rotating the
// credential that signs the request without KeepOld is refused with
// CREDENTIAL_IN_USE: the new secret is shown once, so a lost answer would
// leave the back end with no working credential.
func (s *Service) RotateTx(ctx context.Context, db bun.IDB, partnerID, id uuid.UUID, p RotateParams, signing uuid.UUID) (old *partner.Credential, created *Created, err error) {
	old, err = s.Get(ctx, db, partnerID, id)
	if err != nil {
		return nil, nil, err
	}
	if !p.KeepOld && id == signing {
		return nil, nil, errInUse("rotating it without keepOld")
	}
	created, err = s.CreateTx(ctx, db, partnerID, CreateParams{Kind: old.Kind, Description: old.Description, PublicKey: p.PublicKey, Secret: p.Secret})
	if err != nil {
		return nil, nil, err
	}
	if !p.KeepOld && old.Enabled {
		if err := s.Partners.SetCredentialEnabled(ctx, db, partnerID, id, false); err != nil {
			return nil, nil, err
		}
	}
	return old, created, nil
}

// State is a credential as the audit log records it: never a secret (the
// Ed25519 public key is public).
func State(c *partner.Credential) map[string]any {
	m := map[string]any{"id": c.ID, "kind": c.Kind, "description": c.Description, "enabled": c.Enabled}
	if len(c.PublicKey) > 0 {
		m["publicKey"] = base64.StdEncoding.EncodeToString(c.PublicKey)
	}
	return m
}

// CallbackDescription names the webhook endpoint that is the partner's
// callback URL (seed 004's API access record has one).
const CallbackDescription = "Callback URL (API access)"

// callbackNamespace derives the callback endpoint's id.
var callbackNamespace = uuid.MustParse("7c1f0e55-2d7a-4d0f-9a43-5f4e0c2b6a11")

// CallbackEndpointID is the id of the partner's callback URL endpoint: a
// webhook endpoint like any other, whose id is derived from the partner,
// so the portal's API access page and PUT
// /integrations/webhook-endpoints/{id} edit the same one.
func CallbackEndpointID(partnerID uuid.UUID) uuid.UUID {
	return uuid.NewSHA1(callbackNamespace, partnerID[:])
}

// OriginCheck answers nil when the caller's address is allowed under the
// allowed-origins list (auth.OriginChecker.Check with the request's client
// address).
type OriginCheck func(ctx context.Context, allowed []string) error

// SetAllowedOriginsTx replaces the partner's allowed origins (IPs, CIDRs,
// host names; empty allows any). With callerAllowed set (a partner API
// call), a list that would refuse the caller's own address is refused with
// ALLOWED_ORIGINS_LOCKOUT and nothing changes: the caller's back end would
// be locked out. The portal passes nil (it is not the back end).
func (s *Service) SetAllowedOriginsTx(ctx context.Context, db bun.IDB, partnerID uuid.UUID, list []string, callerAllowed OriginCheck) (*partner.Partner, error) {
	if list == nil {
		list = []string{}
	}
	if err := textcheck.Lines("allowedOrigins", list); err != nil {
		return nil, err
	}
	p, err := s.Partners.UpdateControls(ctx, db, partnerID, partner.Controls{AllowedOrigins: &list})
	if err != nil {
		return nil, err
	}
	if callerAllowed != nil {
		if err := callerAllowed(ctx, p.AllowedOrigins); err != nil {
			if apperr.Is(err, apperr.CodeOriginNotAllowed) {
				return nil, apperr.Field(apperr.CodeOriginsLockout, "allowedOrigins",
					"these allowed origins would refuse the address this request came from; include it, or change them from an allowed address or the portal")
			}
			return nil, err
		}
	}
	return p, nil
}
