package partner

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"database/sql"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
)

// APIKeyPrefix starts every generated API key, so a leaked key is easy to
// recognise in logs and secret scanners.
const APIKeyPrefix = "perks_ak_"

// NewAPIKey returns a fresh random API key (32 random bytes).
func NewAPIKey() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return APIKeyPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// NewSecret returns a fresh random shared secret, printable.
func NewSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Ed25519Credential is what creating an Ed25519 credential shows once: the
// API key and, when the platform generated the pair, the private key.
type Ed25519Credential struct {
	Credential *Credential
	APIKey     string
	// PrivateKeyPEM is the PKCS#8 private key, empty when the partner
	// registered its own public key.
	PrivateKeyPEM string
	PublicKey     ed25519.PublicKey
}

// ParseEd25519PublicKey accepts a PKIX PEM ("PUBLIC KEY"), or the base64 of
// the 32 raw bytes.
func ParseEd25519PublicKey(text string) (ed25519.PublicKey, error) {
	text = strings.TrimSpace(text)
	if block, _ := pem.Decode([]byte(text)); block != nil {
		pub, err := ParsePublicKeyPEM(AlgEdDSA, text)
		if err != nil {
			return nil, err
		}
		return pub.(ed25519.PublicKey), nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(text); err == nil && len(b) == ed25519.PublicKeySize {
			return ed25519.PublicKey(b), nil
		}
	}
	return nil, apperr.Field(apperr.CodeInvalidField, "publicKey", "an Ed25519 public key must be a PEM PUBLIC KEY or the base64 of its 32 bytes")
}

// CreateEd25519Credential creates an API key and an Ed25519 credential. With
// a nil public key the platform generates the pair and returns the private
// key, which is never stored: show it once (seed 004). Only a SHA-256 of
// the API key is stored.
func (s *Service) CreateEd25519Credential(ctx context.Context, db bun.IDB, partnerID uuid.UUID, description string, pub ed25519.PublicKey) (*Ed25519Credential, error) {
	s.Changed()
	out := &Ed25519Credential{APIKey: NewAPIKey()}
	if pub == nil {
		p, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			return nil, err
		}
		pub = p
		out.PrivateKeyPEM = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	}
	if len(pub) != ed25519.PublicKeySize {
		return nil, apperr.Field(apperr.CodeInvalidField, "publicKey", "an Ed25519 public key has 32 bytes")
	}
	out.PublicKey = pub
	c := &Credential{
		PartnerID: partnerID, ID: uuid.New(), Kind: KindEd25519, Description: description, Enabled: true,
		PublicKey: []byte(pub), APIKeyHash: HashAPIKey(out.APIKey),
	}
	if _, err := db.NewInsert().Model(c).ExcludeColumn("created_at", "last_used_at").Returning("*").Exec(ctx); err != nil {
		return nil, fmt.Errorf("insert ed25519 credential: %w", err)
	}
	out.Credential = c
	return out, nil
}

// Ed25519Key is an enabled Ed25519 credential found by its API key.
type Ed25519Key struct {
	PartnerID    uuid.UUID
	CredentialID uuid.UUID
	PublicKey    ed25519.PublicKey
}

// Ed25519ByAPIKey finds the enabled Ed25519 credential an API key names.
// Unknown and disabled keys both answer NOT_FOUND.
func (s *Service) Ed25519ByAPIKey(ctx context.Context, db bun.IDB, apiKey string) (*Ed25519Key, error) {
	c := new(Credential)
	err := db.NewSelect().Model(c).Column("partner_id", "id", "public_key").
		Where("api_key_hash = ? AND kind = ? AND enabled", HashAPIKey(apiKey), KindEd25519).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apperr.New(apperr.CodeNotFound, "credential not found")
	}
	if err != nil {
		return nil, fmt.Errorf("load ed25519 credential: %w", err)
	}
	return &Ed25519Key{PartnerID: c.PartnerID, CredentialID: c.ID, PublicKey: ed25519.PublicKey(c.PublicKey)}, nil
}

// BackendToken is a back-end token of the request-JWT scheme.
type BackendToken struct {
	bun.BaseModel `bun:"table:partner_backend_tokens"`

	PartnerID    uuid.UUID `bun:"partner_id,pk,type:uuid"`
	TokenHash    []byte    `bun:"token_hash,pk"`
	CredentialID uuid.UUID `bun:"credential_id,type:uuid"`
	ExpiresAt    time.Time `bun:"expires_at"`
	CreatedAt    time.Time `bun:"created_at"`
}

// BackendTokenPrefix starts every back-end token.
const BackendTokenPrefix = "perks_bt_"

// IssueBackendToken creates an opaque back-end token for the credential
// that signed POST /auth/token (seed 001). Only its SHA-256 is stored.
func (s *Service) IssueBackendToken(ctx context.Context, db bun.IDB, partnerID, credentialID uuid.UUID, ttl time.Duration) (string, time.Time, error) {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	tok := BackendTokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	now := s.Now().UTC()
	row := &BackendToken{PartnerID: partnerID, TokenHash: hashToken(tok), CredentialID: credentialID, ExpiresAt: now.Add(ttl), CreatedAt: now}
	if _, err := db.NewInsert().Model(row).Exec(ctx); err != nil {
		return "", time.Time{}, fmt.Errorf("insert backend token: %w", err)
	}
	return tok, row.ExpiresAt, nil
}

func hashToken(tok string) []byte {
	h := sha256.Sum256([]byte("backend-token:" + tok))
	return h[:]
}

// BackendTokenState is what CheckBackendToken found.
type BackendTokenState int

// Back-end token states.
const (
	BackendTokenUnknown BackendTokenState = iota
	BackendTokenExpired
	BackendTokenLive
)

// CheckBackendToken looks tok up among the partner's back-end tokens. A
// token whose credential was disabled counts as unknown.
func (s *Service) CheckBackendToken(ctx context.Context, db bun.IDB, partnerID uuid.UUID, tok string) (uuid.UUID, BackendTokenState, error) {
	var row struct {
		CredentialID uuid.UUID `bun:"credential_id"`
		ExpiresAt    time.Time `bun:"expires_at"`
	}
	err := db.NewRaw(`SELECT t.credential_id, t.expires_at FROM partner_backend_tokens t
		JOIN partner_credentials c ON c.partner_id = t.partner_id AND c.id = t.credential_id
		WHERE t.partner_id = ? AND t.token_hash = ? AND c.enabled`,
		partnerID, hashToken(tok)).Scan(ctx, &row)
	if errors.Is(err, sql.ErrNoRows) {
		return uuid.Nil, BackendTokenUnknown, nil
	}
	if err != nil {
		return uuid.Nil, BackendTokenUnknown, fmt.Errorf("check backend token: %w", err)
	}
	if !row.ExpiresAt.After(s.Now()) {
		return row.CredentialID, BackendTokenExpired, nil
	}
	return row.CredentialID, BackendTokenLive, nil
}

// PruneBackendTokens deletes expired back-end tokens.
func PruneBackendTokens(ctx context.Context, db bun.IDB, now time.Time) (int64, error) {
	res, err := db.NewRaw("DELETE FROM partner_backend_tokens WHERE expires_at < ?", now.UTC()).Exec(ctx)
	if err != nil {
		return 0, fmt.Errorf("prune backend tokens: %w", err)
	}
	return res.RowsAffected()
}

// UnsealableLogInterval is how often the same unsealable credential is
// logged again: it is met on every request of its partner.
const UnsealableLogInterval = time.Minute

// unsealableLog remembers when each unsealable credential was last logged.
type unsealableLog struct {
	mu   sync.Mutex
	last map[uuid.UUID]time.Time
}

// skipUnsealable is what the credential loaders do with a credential whose
// secret does not open (sealed under another master key, corrupted) or
// whose key does not parse: they leave it out and go on, so it never breaks
// the partner's other credentials; a request signed with it fails like one
// signed with an unknown secret (401), instead of every request of the
// scheme answering 500. The operator is told which credential to replace
// (partner and credential ids, never a secret), at most once per
// UnsealableLogInterval per credential.
func (s *Service) skipUnsealable(ctx context.Context, partnerID, credID uuid.UUID, kind string, err error) {
	now := time.Now()
	if s.Now != nil {
		now = s.Now()
	}
	s.unsealable.mu.Lock()
	last, seen := s.unsealable.last[credID]
	log := !seen || now.Sub(last) >= UnsealableLogInterval || now.Before(last)
	if log {
		if s.unsealable.last == nil || len(s.unsealable.last) >= 1024 {
			s.unsealable.last = make(map[uuid.UUID]time.Time)
		}
		s.unsealable.last[credID] = now
	}
	s.unsealable.mu.Unlock()
	if !log {
		return
	}
	l := s.Log
	if l == nil {
		l = slog.Default()
	}
	l.ErrorContext(ctx, fmt.Sprintf("credential %s cannot be unsealed: skipped; replace it (is the master key the one it was sealed with?)", credID),
		"partner_id", partnerID, "credential_id", credID, "kind", kind, "error", err.Error())
}
