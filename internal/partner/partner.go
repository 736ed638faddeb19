// Package partner owns partners (the tenants), their API credentials and the
// keys that verify their consumer tokens. Secrets are sealed with the
// keyring; callers get them opened only through the methods that need them.
package partner

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"database/sql"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/keyring"
	"github.com/perkshq/perks/internal/textcheck"
)

// Partner is a tenant.
type Partner struct {
	bun.BaseModel `bun:"table:partners"`

	ID                      uuid.UUID `bun:"id,pk,type:uuid"`
	Slug                    string    `bun:"slug"`
	Name                    string    `bun:"name"`
	DisplayName             string    `bun:"display_name"`
	LogoPath                string    `bun:"logo_path"`
	ProgramName             string    `bun:"program_name"`
	CurrencyName            string    `bun:"currency_name"`
	Issuer                  *string   `bun:"issuer"`
	Audience                string    `bun:"audience"`
	MaxTokenLifetimeSeconds int       `bun:"max_token_lifetime_seconds"`
	Timezone                string    `bun:"timezone"`
	APIEnabled              bool      `bun:"api_enabled"`
	// Status is the onboarding state the platform operator sets: pending,
	// active or suspended (see status.go).
	Status          string     `bun:"status"`
	StatusChangedAt *time.Time `bun:"status_changed_at"`
	RequireHMACV2   bool       `bun:"require_hmac_v2"`
	// RequireRequestBinding refuses request JWTs without htm and htu.
	RequireRequestBinding bool `bun:"require_request_binding"`
	// AllowedOrigins lists the IPs, CIDRs and host names partner back-end
	// calls may come from; empty means any.
	AllowedOrigins []string `bun:"allowed_origins,array"`
	// AllowedSchemes lists the partner authentication schemes accepted;
	// empty means every scheme the partner holds a credential for.
	AllowedSchemes []string `bun:"allowed_schemes,array"`
	// FrameAncestors lists the CSP frame-ancestors sources allowed to
	// frame the partner's webview; empty means none.
	FrameAncestors []string `bun:"frame_ancestors,array"`
	// CORSOrigins lists the exact browser origins (https://app.example.com)
	// allowed to call /graphql from a page of their own; empty means none
	// but the webview's own origin (see ValidateCORSOrigin).
	CORSOrigins []string `bun:"cors_origins,array"`
	// Rate limits per replica; nil means the configured default, 0 unlimited.
	RateLimitPerMinute         *int    `bun:"rate_limit_per_minute"`
	RateLimitBurst             *int    `bun:"rate_limit_burst"`
	ConsumerRateLimitPerMinute *int    `bun:"consumer_rate_limit_per_minute"`
	ConsumerRateLimitBurst     *int    `bun:"consumer_rate_limit_burst"`
	JWKSURL                    *string `bun:"jwks_url"`
	// JWKSDescription and JWKSDisabled describe the JWKS URL like a
	// consumer key's description and toggle; a disabled URL is kept but
	// its keys verify nothing.
	JWKSDescription string    `bun:"jwks_description"`
	JWKSDisabled    bool      `bun:"jwks_disabled"`
	CreatedAt       time.Time `bun:"created_at"`
	UpdatedAt       time.Time `bun:"updated_at"`

	// DefaultLocale is the content locale shown to users whose own locale
	// has no translation (nil: the base text); see package locale.
	DefaultLocale *string `bun:"default_locale"`
	// SandboxOf is the live partner this partner is the sandbox of; nil
	// for a live partner (see sandbox.go).
	SandboxOf *uuid.UUID `bun:"sandbox_of,type:uuid"`
}

// AllowsScheme reports whether the partner accepts a credential scheme.
func (p *Partner) AllowsScheme(scheme string) bool {
	return len(p.AllowedSchemes) == 0 || slices.Contains(p.AllowedSchemes, scheme)
}

// MaxTokenLifetime is the longest exp - iat a consumer token may have.
func (p *Partner) MaxTokenLifetime() time.Duration {
	return time.Duration(p.MaxTokenLifetimeSeconds) * time.Second
}

// Credential kinds.
const (
	KindHMAC       = "hmac"
	KindEd25519    = "ed25519"
	KindRequestJWT = "request_jwt"
)

// Credential authenticates a partner's back end.
type Credential struct {
	bun.BaseModel `bun:"table:partner_credentials"`

	PartnerID    uuid.UUID  `bun:"partner_id,pk,type:uuid"`
	ID           uuid.UUID  `bun:"id,pk,type:uuid"`
	Kind         string     `bun:"kind"`
	Description  string     `bun:"description"`
	Enabled      bool       `bun:"enabled"`
	SecretSealed []byte     `bun:"secret_sealed"`
	PublicKey    []byte     `bun:"public_key"`
	APIKeyHash   []byte     `bun:"api_key_hash"`
	CreatedAt    time.Time  `bun:"created_at"`
	LastUsedAt   *time.Time `bun:"last_used_at"`
}

// Consumer key algorithms.
const (
	AlgRS256 = "RS256"
	AlgES256 = "ES256"
	AlgEdDSA = "EdDSA"
	AlgHS256 = "HS256"
)

// ConsumerKey verifies consumer JWTs of one partner with one algorithm.
type ConsumerKey struct {
	bun.BaseModel `bun:"table:consumer_keys"`

	PartnerID    uuid.UUID `bun:"partner_id,pk,type:uuid"`
	ID           uuid.UUID `bun:"id,pk,type:uuid"`
	Kid          string    `bun:"kid"`
	Description  string    `bun:"description"`
	Algorithm    string    `bun:"algorithm"`
	PublicKeyPEM *string   `bun:"public_key_pem"`
	SecretSealed []byte    `bun:"secret_sealed"`
	Enabled      bool      `bun:"enabled"`
	// NoExpMaxAgeSeconds, when set, lets tokens of this key omit exp (seed
	// 003 calls it optional) if their iat is at most this old; nil requires
	// exp (the default).
	NoExpMaxAgeSeconds *int      `bun:"no_exp_max_age_seconds"`
	CreatedAt          time.Time `bun:"created_at"`
	UpdatedAt          time.Time `bun:"updated_at"`
}

// Service manages partners.
type Service struct {
	Keys *keyring.Keyring
	Now  func() time.Time
	// Log receives the warning about credentials that cannot be unsealed
	// (slog.Default when nil).
	Log *slog.Logger

	// Cache, when set, answers authentication's lookups (Auth); nil reads
	// the database every time.
	Cache *Cache

	keyCache   keyCache
	unsealable unsealableLog
	// touched remembers when this process recorded a credential's use
	// (credential id to time.Time).
	touched sync.Map
}

// Changed tells the cache that this process is changing what
// authentication reads (see Cache.Invalidate): every write of this package
// calls it, and so do writes made outside it (the credential and program
// services' statements on partners and consumer keys).
func (s *Service) Changed() { s.Cache.Invalidate() }

// NewService returns a Service using the wall clock.
func NewService(k *keyring.Keyring) *Service { return &Service{Keys: k, Now: time.Now} }

var slugRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// CreateParams describes a new partner. Zero values get sensible defaults.
type CreateParams struct {
	Slug, Name, DisplayName, LogoPath, ProgramName, CurrencyName string
	Issuer                                                       string
	// Status of a new partner: StatusActive when empty (the CLI and the
	// demo seed); the console creates partners StatusPending. Upserting an
	// existing partner never changes its status.
	Status string
}

// Upsert creates the partner or updates its descriptive fields, by slug.
func (s *Service) Upsert(ctx context.Context, db bun.IDB, p CreateParams) (*Partner, error) {
	s.Changed()
	if !slugRE.MatchString(p.Slug) {
		return nil, apperr.Field(apperr.CodeInvalidField, "slug", "slug must be 1-63 lowercase letters, digits, '-' or '_'")
	}
	if err := checkNotSandboxSlug(p.Slug); err != nil {
		return nil, err
	}
	if p.Name == "" {
		return nil, apperr.Field(apperr.CodeMissingField, "name", "name is required")
	}
	if p.DisplayName == "" {
		p.DisplayName = p.Name
	}
	if p.CurrencyName == "" {
		p.CurrencyName = "points"
	}
	row := &Partner{
		ID: uuid.New(), Slug: p.Slug, Name: p.Name, DisplayName: p.DisplayName, LogoPath: p.LogoPath,
		ProgramName: p.ProgramName, CurrencyName: p.CurrencyName, MaxTokenLifetimeSeconds: 7 * 24 * 3600,
		Timezone: "UTC", APIEnabled: true, AllowedOrigins: []string{}, AllowedSchemes: []string{}, CORSOrigins: []string{},
		FrameAncestors: []string{}, Status: StatusActive,
	}
	if p.Status != "" {
		if !validStatus(p.Status) {
			return nil, apperr.Field(apperr.CodeInvalidField, "status", "status must be pending, active or suspended")
		}
		row.Status = p.Status
	}
	if p.Issuer != "" {
		row.Issuer = &p.Issuer
	}
	_, err := db.NewInsert().Model(row).
		ExcludeColumn("created_at", "updated_at").
		On("CONFLICT (slug) DO UPDATE").
		Set("name = EXCLUDED.name, display_name = EXCLUDED.display_name, logo_path = EXCLUDED.logo_path").
		Set("program_name = EXCLUDED.program_name, currency_name = EXCLUDED.currency_name").
		Set("issuer = EXCLUDED.issuer, updated_at = now()").
		Returning("*").
		Exec(ctx)
	if err != nil {
		return nil, fmt.Errorf("upsert partner %s: %w", p.Slug, err)
	}
	return row, nil
}

// ByID loads a partner.
func (s *Service) ByID(ctx context.Context, db bun.IDB, id uuid.UUID) (*Partner, error) {
	return s.one(ctx, db, "id = ?", id)
}

// BySlug loads a partner by slug.
func (s *Service) BySlug(ctx context.Context, db bun.IDB, slug string) (*Partner, error) {
	return s.one(ctx, db, "slug = ?", slug)
}

// ByIssuer loads the partner whose consumer tokens carry iss.
func (s *Service) ByIssuer(ctx context.Context, db bun.IDB, iss string) (*Partner, error) {
	return s.one(ctx, db, "issuer = ?", iss)
}

func (s *Service) one(ctx context.Context, db bun.IDB, where string, arg any) (*Partner, error) {
	// No stored slug or issuer holds a control character. bun before v1.3
	// dropped NUL bytes from the values it inlines ("ac\x00me" found acme);
	// v1.3 fails the statement instead, which would be a 500: not found.
	if s, ok := arg.(string); ok {
		if _, _, bad := textcheck.Bad(s, false); bad {
			return nil, apperr.New(apperr.CodeNotFound, "partner not found")
		}
	}
	p := new(Partner)
	err := db.NewSelect().Model(p).Where(where, arg).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apperr.New(apperr.CodeNotFound, "partner not found")
	}
	if err != nil {
		return nil, fmt.Errorf("load partner: %w", err)
	}
	return p, nil
}

func credentialAAD(partnerID, id uuid.UUID) []byte {
	return []byte("partner-credential:" + partnerID.String() + ":" + id.String())
}

// AddSharedSecret stores an HMAC or request-JWT secret, sealed.
func (s *Service) AddSharedSecret(ctx context.Context, db bun.IDB, partnerID uuid.UUID, kind, description string, secret []byte) (*Credential, error) {
	s.Changed()
	if kind != KindHMAC && kind != KindRequestJWT {
		return nil, fmt.Errorf("credential kind %q has no shared secret", kind)
	}
	if len(secret) < 16 {
		return nil, apperr.Field(apperr.CodeInvalidField, "secret", "a shared secret must be at least 16 bytes")
	}
	c := &Credential{PartnerID: partnerID, ID: uuid.New(), Kind: kind, Description: description, Enabled: true}
	sealed, err := s.Keys.Seal(secret, credentialAAD(partnerID, c.ID))
	if err != nil {
		return nil, fmt.Errorf("seal secret: %w", err)
	}
	c.SecretSealed = sealed
	if _, err := db.NewInsert().Model(c).ExcludeColumn("created_at", "last_used_at").Returning("*").Exec(ctx); err != nil {
		return nil, fmt.Errorf("insert %s credential: %w", kind, err)
	}
	return c, nil
}

// HashAPIKey is how API keys are stored and looked up.
func HashAPIKey(apiKey string) []byte {
	h := sha256.Sum256([]byte(apiKey))
	return h[:]
}

// SharedSecret is an opened shared secret with the credential it came from.
type SharedSecret struct {
	CredentialID uuid.UUID
	Secret       []byte
	LastUsedAt   *time.Time
}

// EnabledSecrets returns the opened secrets of the partner's enabled
// credentials of a kind; several may be active during rotation.
func (s *Service) EnabledSecrets(ctx context.Context, db bun.IDB, partnerID uuid.UUID, kind string) ([]SharedSecret, error) {
	var creds []Credential
	err := db.NewSelect().Model(&creds).
		Where("partner_id = ? AND kind = ? AND enabled", partnerID, kind).
		OrderExpr("created_at DESC").Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("load %s credentials: %w", kind, err)
	}
	out := make([]SharedSecret, 0, len(creds))
	for _, c := range creds {
		pt, err := s.Keys.Open(c.SecretSealed, credentialAAD(c.PartnerID, c.ID))
		if err != nil {
			s.skipUnsealable(ctx, c.PartnerID, c.ID, kind, err)
			continue
		}
		out = append(out, SharedSecret{CredentialID: c.ID, Secret: pt, LastUsedAt: c.LastUsedAt})
	}
	return out, nil
}

// BySlugWithSecrets loads a partner and the opened secrets of its enabled
// credentials of a kind in one query: the signature check of every partner
// request needs both, and this is its hottest query.
func (s *Service) BySlugWithSecrets(ctx context.Context, db bun.IDB, slug, kind string) (*Partner, []SharedSecret, error) {
	var rows []struct {
		Partner  `bun:",extend"`
		CredID   *uuid.UUID `bun:"cred_id,type:uuid"`
		Sealed   []byte     `bun:"cred_sealed"`
		LastUsed *time.Time `bun:"cred_last_used_at"`
	}
	err := db.NewRaw(`SELECT p.*, c.id AS cred_id, c.secret_sealed AS cred_sealed, c.last_used_at AS cred_last_used_at
		FROM partners p
		LEFT JOIN partner_credentials c ON c.partner_id = p.id AND c.kind = ? AND c.enabled
		WHERE p.slug = ? ORDER BY c.created_at DESC`, kind, slug).Scan(ctx, &rows)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, nil, fmt.Errorf("load partner %s with %s credentials: %w", slug, kind, err)
	}
	if len(rows) == 0 {
		return nil, nil, apperr.New(apperr.CodeNotFound, "partner not found")
	}
	p := rows[0].Partner
	var out []SharedSecret
	for _, r := range rows {
		if r.CredID == nil {
			continue
		}
		pt, err := s.Keys.Open(r.Sealed, credentialAAD(p.ID, *r.CredID))
		if err != nil {
			s.skipUnsealable(ctx, p.ID, *r.CredID, kind, err)
			continue
		}
		out = append(out, SharedSecret{CredentialID: *r.CredID, Secret: pt, LastUsedAt: r.LastUsed})
	}
	return &p, out, nil
}

// TouchInterval is how stale last_used_at may get: use is recorded at most
// once per interval per credential, so hot partners neither serialise on one
// row nor pay a write per request.
const TouchInterval = time.Minute

// NeedsTouch reports whether a credential last used at lastUsed should be
// touched now.
func NeedsTouch(lastUsed *time.Time, now time.Time) bool {
	return lastUsed == nil || lastUsed.Before(now.Add(-TouchInterval))
}

// TouchCredential records use, at most once per TouchInterval.
func (s *Service) TouchCredential(ctx context.Context, db bun.IDB, partnerID, id uuid.UUID) error {
	_, err := db.NewUpdate().Model((*Credential)(nil)).
		Set("last_used_at = ?", s.Now().UTC()).
		Where("partner_id = ? AND id = ?", partnerID, id).
		Where("(last_used_at IS NULL OR last_used_at < ?)", s.Now().UTC().Add(-time.Minute)).
		Exec(ctx)
	if err != nil {
		return fmt.Errorf("touch credential %s: %w", id, err)
	}
	s.touched.Store(id, s.Now())
	return nil
}

// SetCredentialEnabled switches a credential on or off.
func (s *Service) SetCredentialEnabled(ctx context.Context, db bun.IDB, partnerID, id uuid.UUID, enabled bool) error {
	s.Changed()
	res, err := db.NewUpdate().Model((*Credential)(nil)).Set("enabled = ?", enabled).
		Where("partner_id = ? AND id = ?", partnerID, id).Exec(ctx)
	if err != nil {
		return fmt.Errorf("set credential %s enabled=%v: %w", id, enabled, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return apperr.New(apperr.CodeNotFound, "credential not found")
	}
	return nil
}

// ListCredentials lists a partner's credentials (never their secrets).
func (s *Service) ListCredentials(ctx context.Context, db bun.IDB, partnerID uuid.UUID) ([]Credential, error) {
	var creds []Credential
	err := db.NewSelect().Model(&creds).ExcludeColumn("secret_sealed").
		Where("partner_id = ?", partnerID).OrderExpr("created_at").Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("list credentials: %w", err)
	}
	return creds, nil
}

// ParsePublicKeyPEM parses a PEM public key and checks it suits alg.
func ParsePublicKeyPEM(alg string, pemText string) (crypto.PublicKey, error) {
	block, _ := pem.Decode([]byte(pemText))
	if block == nil {
		return nil, apperr.Field(apperr.CodeInvalidField, "publicKey", "not a PEM document")
	}
	var pub crypto.PublicKey
	var err error
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	default:
		return nil, apperr.Field(apperr.CodeInvalidField, "publicKey", "PEM block %q is not a public key", block.Type)
	}
	if err != nil {
		return nil, apperr.Field(apperr.CodeInvalidField, "publicKey", "cannot parse public key")
	}
	ok := false
	switch k := pub.(type) {
	case *rsa.PublicKey:
		ok = alg == AlgRS256 && k.N.BitLen() >= 2048
	case *ecdsa.PublicKey:
		ok = alg == AlgES256 && k.Curve.Params().Name == "P-256"
	case ed25519.PublicKey:
		ok = alg == AlgEdDSA
	}
	if !ok {
		return nil, apperr.Field(apperr.CodeInvalidField, "publicKey", "key type does not match algorithm %s (RSA keys need 2048 bits or more)", alg)
	}
	return pub, nil
}

// AddConsumerKeyParams describes a consumer token key. Exactly one of
// PublicKeyPEM (RS256, ES256, EdDSA) and Secret (HS256) is set.
type AddConsumerKeyParams struct {
	Kid, Description, Algorithm, PublicKeyPEM string
	Secret                                    []byte
	// NoExpMaxAge > 0 accepts tokens without exp up to this age from iat.
	NoExpMaxAge time.Duration
}

func consumerKeyAAD(partnerID, id uuid.UUID) []byte {
	return []byte("consumer-key:" + partnerID.String() + ":" + id.String())
}

// UpsertConsumerKey registers a key (replacing the material of the same kid).
func (s *Service) UpsertConsumerKey(ctx context.Context, db bun.IDB, partnerID uuid.UUID, p AddConsumerKeyParams) (*ConsumerKey, error) {
	s.Changed()
	if p.Kid == "" || len(p.Kid) > 200 {
		return nil, apperr.Field(apperr.CodeInvalidField, "kid", "kid must be 1-200 characters")
	}
	k := &ConsumerKey{PartnerID: partnerID, ID: uuid.New(), Kid: p.Kid, Description: p.Description, Algorithm: p.Algorithm, Enabled: true}
	if err := k.setNoExpMaxAge(p.NoExpMaxAge); err != nil {
		return nil, err
	}
	switch p.Algorithm {
	case AlgRS256, AlgES256, AlgEdDSA:
		if _, err := ParsePublicKeyPEM(p.Algorithm, p.PublicKeyPEM); err != nil {
			return nil, err
		}
		k.PublicKeyPEM = &p.PublicKeyPEM
	case AlgHS256:
		if len(p.Secret) < 32 {
			return nil, apperr.Field(apperr.CodeInvalidField, "secret", "HS256 secrets must be at least 32 bytes")
		}
	default:
		return nil, apperr.Field(apperr.CodeInvalidField, "algorithm", "algorithm must be RS256, ES256, EdDSA or HS256")
	}
	// The id is kept on conflict, so seal against the surviving row's id.
	existing := new(ConsumerKey)
	err := db.NewSelect().Model(existing).Column("id").Where("partner_id = ? AND kid = ?", partnerID, p.Kid).Scan(ctx)
	if err == nil {
		k.ID = existing.ID
	} else if !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("load consumer key %s: %w", p.Kid, err)
	}
	if p.Algorithm == AlgHS256 {
		sealed, err := s.Keys.Seal(p.Secret, consumerKeyAAD(partnerID, k.ID))
		if err != nil {
			return nil, err
		}
		k.SecretSealed = sealed
	}
	_, err = db.NewInsert().Model(k).ExcludeColumn("created_at", "updated_at").
		On("CONFLICT (partner_id, kid) DO UPDATE").
		Set("description = EXCLUDED.description, algorithm = EXCLUDED.algorithm").
		Set("public_key_pem = EXCLUDED.public_key_pem, secret_sealed = EXCLUDED.secret_sealed, enabled = EXCLUDED.enabled").
		Set("no_exp_max_age_seconds = EXCLUDED.no_exp_max_age_seconds").
		Set("updated_at = now()").
		Returning("*").Exec(ctx)
	if err != nil {
		return nil, fmt.Errorf("upsert consumer key %s: %w", p.Kid, err)
	}
	return k, nil
}

// VerificationKey is a consumer key ready to verify signatures: Key is a
// crypto.PublicKey of the algorithm's type, or the HS256 secret as []byte.
type VerificationKey struct {
	ID        uuid.UUID
	Kid       string
	Algorithm string
	Key       any
	// NoExpMaxAge > 0: tokens without exp verify if iat is at most this old.
	NoExpMaxAge time.Duration
}

// EnabledConsumerKeys returns the partner's enabled keys, optionally only the
// one with kid.
func (s *Service) EnabledConsumerKeys(ctx context.Context, db bun.IDB, partnerID uuid.UUID, kid string) ([]VerificationKey, error) {
	var rows []ConsumerKey
	q := db.NewSelect().Model(&rows).Where("partner_id = ? AND enabled", partnerID).OrderExpr("created_at DESC")
	if kid != "" {
		q = q.Where("kid = ?", kid)
	}
	if err := q.Scan(ctx); err != nil {
		return nil, fmt.Errorf("load consumer keys: %w", err)
	}
	out := make([]VerificationKey, 0, len(rows))
	for i := range rows {
		vk, err := s.verificationKey(&rows[i])
		if err != nil {
			s.skipUnsealable(ctx, partnerID, rows[i].ID, "consumer key", err)
			continue
		}
		out = append(out, vk)
	}
	return out, nil
}

// PartnersWithKid returns the ids of partners that registered an enabled key
// with this kid (used to resolve a token's partner when it has no known iss).
func (s *Service) PartnersWithKid(ctx context.Context, db bun.IDB, kid string) ([]uuid.UUID, error) {
	var ids []uuid.UUID
	err := db.NewSelect().Model((*ConsumerKey)(nil)).Column("partner_id").
		Where("kid = ? AND enabled", kid).Limit(2).Scan(ctx, &ids)
	if err != nil {
		return nil, fmt.Errorf("partners with kid: %w", err)
	}
	return ids, nil
}
