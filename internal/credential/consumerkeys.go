package credential

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/partner"
	"github.com/perkshq/perks/internal/textcheck"
)

// Algorithms lists the consumer key algorithms.
var Algorithms = []string{partner.AlgRS256, partner.AlgES256, partner.AlgEdDSA, partner.AlgHS256}

// KeyParams describe a consumer token key (seed 002's public key, seed
// 003's HS256 secret). Exactly one of PublicKeyPEM, Secret and
// GenerateSecret is given.
type KeyParams struct {
	Kid, Description string
	// Algorithm: empty takes the PEM key's (RSA RS256, EC P-256 ES256,
	// Ed25519 EdDSA), or HS256 for a secret.
	Algorithm    string
	PublicKeyPEM string
	// Secret is an HS256 secret (at least 32 bytes); GenerateSecret makes
	// one, returned once.
	Secret         string
	GenerateSecret bool
	// NoExpMaxAge > 0 accepts tokens without exp up to this age from iat.
	NoExpMaxAge time.Duration
	// Disabled adds the key switched off (seed 002's enabled toggle).
	Disabled bool
}

// AddedKey is a new consumer key with what is shown once.
type AddedKey struct {
	Key *partner.ConsumerKey
	// Secret is the generated HS256 secret, shown once; empty otherwise.
	Secret string
	// SharedKid: another partner has an enabled key with this kid, so the
	// kid alone no longer resolves the partner (tokens need iss or
	// X-Partner-Slug). The other partner is never named.
	SharedKid bool
}

func (p *KeyParams) validate() error {
	if p.Kid == "" {
		return apperr.Field(apperr.CodeMissingField, "kid", "kid is required (the JWT header's kid)")
	}
	if len(p.Kid) > 200 {
		return apperr.Field(apperr.CodeInvalidField, "kid", "kid must be 1-200 characters")
	}
	if err := textcheck.Line("kid", p.Kid); err != nil {
		return err
	}
	d, err := checkDescription("description", p.Description)
	if err != nil {
		return err
	}
	p.Description = d
	if p.Algorithm != "" && !slices.Contains(Algorithms, p.Algorithm) {
		return apperr.Field(apperr.CodeInvalidField, "algorithm", "algorithm must be one of %s", strings.Join(Algorithms, ", "))
	}
	given := 0
	for _, b := range []bool{strings.TrimSpace(p.PublicKeyPEM) != "", p.Secret != "", p.GenerateSecret} {
		if b {
			given++
		}
	}
	if given != 1 {
		return apperr.Field(apperr.CodeInvalidField, "publicKey", "give exactly one of publicKey (PEM), secret (HS256) or generateSecret")
	}
	switch {
	case strings.TrimSpace(p.PublicKeyPEM) != "":
		if len(p.PublicKeyPEM) > 16<<10 {
			return apperr.Field(apperr.CodeInvalidField, "publicKey", "the public key PEM is at most 16 KiB")
		}
		_, alg, err := partner.PublicKeyFilePEM([]byte(strings.TrimSpace(p.PublicKeyPEM)))
		if err != nil {
			// The parser's words may quote the input's block type:
			// keep the answer generic (the input may be a private key).
			return apperr.Field(apperr.CodeInvalidField, "publicKey", "not a PEM public key of a supported type (RSA 2048+, EC P-256 or Ed25519; give the public half: openssl pkey -in private.key -pubout)")
		}
		if p.Algorithm == "" {
			p.Algorithm = alg
		}
		if p.Algorithm == partner.AlgHS256 {
			return apperr.Field(apperr.CodeInvalidField, "algorithm", "HS256 keys are secrets, not PEM public keys")
		}
		p.PublicKeyPEM = strings.TrimSpace(p.PublicKeyPEM) + "\n"
	default:
		if p.Algorithm == "" {
			p.Algorithm = partner.AlgHS256
		}
		if p.Algorithm != partner.AlgHS256 {
			return apperr.Field(apperr.CodeInvalidField, "algorithm", "a secret verifies HS256 tokens only")
		}
		if p.Secret != "" && len(p.Secret) > maxSecret {
			return apperr.Field(apperr.CodeInvalidField, "secret", "an HS256 secret is at most %d bytes", maxSecret)
		}
	}
	return nil
}

// Key loads one of the partner's consumer keys by kid (never its secret).
func (s *Service) Key(ctx context.Context, db bun.IDB, partnerID uuid.UUID, kid string) (*partner.ConsumerKey, error) {
	if _, _, bad := textcheck.Bad(kid, false); bad || kid == "" || len(kid) > 200 {
		return nil, apperr.Field(apperr.CodeNotFound, "kid", "no consumer key with this kid")
	}
	k := new(partner.ConsumerKey)
	err := db.NewSelect().Model(k).ExcludeColumn("secret_sealed").
		Where("partner_id = ? AND kid = ?", partnerID, kid).Limit(1).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apperr.Field(apperr.CodeNotFound, "kid", "no consumer key with this kid")
	}
	if err != nil {
		return nil, fmt.Errorf("load consumer key: %w", err)
	}
	return k, nil
}

// AddKeyTx registers a new consumer key. A kid the partner already has is
// refused with CONSUMER_KEY_EXISTS (replacing a key's material is a
// rotation to a new kid, so tokens minted with the old key keep verifying
// until it is disabled).
func (s *Service) AddKeyTx(ctx context.Context, db bun.IDB, partnerID uuid.UUID, p KeyParams) (*AddedKey, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	if _, err := s.Key(ctx, db, partnerID, p.Kid); err == nil {
		return nil, apperr.Field(apperr.CodeConsumerKeyExists, "kid", "you already have a consumer key with this kid")
	} else if !apperr.Is(err, apperr.CodeNotFound) {
		return nil, err
	}
	out := &AddedKey{}
	params := partner.AddConsumerKeyParams{Kid: p.Kid, Description: p.Description, Algorithm: p.Algorithm, NoExpMaxAge: p.NoExpMaxAge}
	switch {
	case p.PublicKeyPEM != "":
		params.PublicKeyPEM = p.PublicKeyPEM
	case p.GenerateSecret:
		out.Secret = partner.NewSecret()
		params.Secret = []byte(out.Secret)
	default:
		params.Secret = []byte(p.Secret)
	}
	k, err := s.Partners.UpsertConsumerKey(ctx, db, partnerID, params)
	if err != nil {
		return nil, err
	}
	if p.Disabled {
		if err := s.Partners.SetConsumerKeyEnabled(ctx, db, partnerID, p.Kid, false); err != nil {
			return nil, err
		}
		k.Enabled = false
	}
	k.SecretSealed = nil
	out.Key = k
	if out.SharedKid, err = s.Partners.KidUsedByOtherPartner(ctx, db, partnerID, p.Kid); err != nil {
		return nil, err
	}
	return out, nil
}

// SetKeyEnabledTx switches a consumer key on or off; it returns the key
// before and after. A disabled key stops verifying with the next request.
func (s *Service) SetKeyEnabledTx(ctx context.Context, db bun.IDB, partnerID uuid.UUID, kid string, enabled bool) (before, after *partner.ConsumerKey, err error) {
	k, err := s.Key(ctx, db, partnerID, kid)
	if err != nil {
		return nil, nil, err
	}
	if err := s.Partners.SetConsumerKeyEnabled(ctx, db, partnerID, kid, enabled); err != nil {
		return nil, nil, err
	}
	a := *k
	a.Enabled = enabled
	return k, &a, nil
}

// RotateKeyTx adds the key p (a new kid) and, unless keepOld, disables
// oldKid in the same transaction. Keep the old key while tokens it signed
// are still alive, then disable it.
func (s *Service) RotateKeyTx(ctx context.Context, db bun.IDB, partnerID uuid.UUID, oldKid string, p KeyParams, keepOld bool) (old *partner.ConsumerKey, added *AddedKey, err error) {
	old, err = s.Key(ctx, db, partnerID, oldKid)
	if err != nil {
		return nil, nil, err
	}
	if p.Kid == oldKid {
		return nil, nil, apperr.Field(apperr.CodeInvalidField, "kid", "the new key needs a new kid, so tokens of the old key keep verifying during the overlap")
	}
	if p.Description == "" {
		p.Description = old.Description
	}
	if added, err = s.AddKeyTx(ctx, db, partnerID, p); err != nil {
		return nil, nil, err
	}
	if !keepOld && old.Enabled {
		if err := s.Partners.SetConsumerKeyEnabled(ctx, db, partnerID, oldKid, false); err != nil {
			return nil, nil, err
		}
	}
	return old, added, nil
}

// KeyState is a consumer key as the audit log records it (never a secret;
// public keys are public).
func KeyState(k *partner.ConsumerKey) map[string]any {
	m := map[string]any{"kid": k.Kid, "algorithm": k.Algorithm, "description": k.Description, "enabled": k.Enabled}
	if a := k.NoExpMaxAge(); a > 0 {
		m["noExpMaxAge"] = a.String()
	}
	return m
}

// JWKS is a partner's JWKS URL with its settings.
type JWKS struct {
	URL         string
	Description string
	Enabled     bool
}

// JWKSOf returns the partner's JWKS settings, or nil when it has none.
func JWKSOf(p *partner.Partner) *JWKS {
	if p.JWKSURL == nil || *p.JWKSURL == "" {
		return nil
	}
	return &JWKS{URL: *p.JWKSURL, Description: p.JWKSDescription, Enabled: !p.JWKSDisabled}
}

// SetJWKSTx sets the partner's JWKS URL, its description and whether its
// keys verify tokens. Production requires https:// (see AllowHTTPJWKS).
func (s *Service) SetJWKSTx(ctx context.Context, db bun.IDB, partnerID uuid.UUID, j JWKS) (*partner.Partner, error) {
	j.URL = strings.TrimSpace(j.URL)
	if j.URL == "" {
		return nil, apperr.Field(apperr.CodeMissingField, "url", "the JWKS URL is required")
	}
	if err := textcheck.Line("url", j.URL); err != nil {
		return nil, err
	}
	if err := partner.ValidateJWKSURL(j.URL); err != nil {
		return nil, apperr.Field(apperr.CodeInvalidField, "url", "the JWKS URL must be an absolute https:// URL without credentials")
	}
	if !s.AllowHTTPJWKS && !strings.HasPrefix(strings.ToLower(j.URL), "https://") {
		return nil, apperr.Field(apperr.CodeInvalidField, "url", "the JWKS URL must use https://")
	}
	d, err := checkDescription("description", j.Description)
	if err != nil {
		return nil, err
	}
	p := &partner.Partner{}
	s.Partners.Changed()
	res, err := db.NewUpdate().Model(p).
		Set("jwks_url = ?, jwks_description = ?, jwks_disabled = ?, updated_at = now()", j.URL, d, !j.Enabled).
		Where("id = ?", partnerID).Returning("*").Exec(ctx)
	if err != nil {
		return nil, fmt.Errorf("set jwks: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, apperr.New(apperr.CodeNotFound, "partner not found")
	}
	return p, nil
}

// RemoveJWKSTx removes the partner's JWKS URL; NOT_FOUND when it has none.
func (s *Service) RemoveJWKSTx(ctx context.Context, db bun.IDB, partnerID uuid.UUID) error {
	s.Partners.Changed()
	res, err := db.NewUpdate().Model((*partner.Partner)(nil)).
		Set("jwks_url = NULL, jwks_description = '', jwks_disabled = false, updated_at = now()").
		Where("id = ? AND jwks_url IS NOT NULL", partnerID).Exec(ctx)
	if err != nil {
		return fmt.Errorf("remove jwks: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return apperr.New(apperr.CodeNotFound, "no JWKS URL is set")
	}
	return nil
}
