package merchant

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/partner"
)

// SignedRequest is what a merchant request's signature covers, with the
// headers that carry the credential.
type SignedRequest struct {
	APIKey         string
	Timestamp      string
	Signature      string
	IdempotencyKey string
	Method         string
	PathQuery      string
	Body           []byte
}

// Principal is an authenticated merchant.
type Principal struct {
	Partner      *partner.Partner
	Merchant     *Merchant
	CredentialID uuid.UUID
}

var errBadSignature = apperr.New(apperr.CodeInvalidSignature, "the request signature does not verify")

// dummyKey keeps unknown API keys on the same code path (and roughly the
// same time) as known ones.
var dummyKey = ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)).Public().(ed25519.PublicKey)

type credentialRow struct {
	PartnerID  uuid.UUID `bun:"partner_id,type:uuid"`
	ID         uuid.UUID `bun:"id,type:uuid"`
	MerchantID uuid.UUID `bun:"merchant_id,type:uuid"`
	PublicKey  []byte    `bun:"public_key"`
}

// Authenticate verifies a merchant request: X-Timestamp within the skew,
// X-API-Key naming an enabled credential of an enabled merchant, and
// X-Signature a valid Ed25519 signature of Canonical(...). An unknown key
// and a bad signature answer the same INVALID_SIGNATURE. A signature is
// accepted once (replay cache), and only after it verified, so nobody can
// burn another merchant's signatures.
func (s *Service) Authenticate(ctx context.Context, db bun.IDB, r SignedRequest) (*Principal, error) {
	if r.APIKey == "" && r.Signature == "" && r.Timestamp == "" {
		return nil, apperr.New(apperr.CodeUnauthenticated, "send X-API-Key, X-Timestamp and X-Signature (see docs/catalog.md)")
	}
	sig, ok := DecodeSignature(r.Signature)
	if !ok || r.APIKey == "" || len(r.APIKey) > 256 {
		return nil, errBadSignature
	}
	ts, err := strconv.ParseInt(r.Timestamp, 10, 64)
	if err != nil || ts <= 0 || strconv.FormatInt(ts, 10) != r.Timestamp {
		return nil, apperr.Field(apperr.CodeInvalidSignature, HeaderTimestamp, "X-Timestamp must be the Unix time in seconds")
	}
	now := s.Now()
	if d := now.Sub(time.Unix(ts, 0)); d > s.Skew || d < -s.Skew {
		return nil, apperr.New(apperr.CodeTimestampOutOfRange, "X-Timestamp is more than %d seconds away from the server's clock", int(s.Skew.Seconds()))
	}

	var row credentialRow
	err = db.NewRaw(`SELECT c.partner_id, c.id, c.merchant_id, c.public_key
		FROM merchant_credentials c
		JOIN merchants m ON m.partner_id = c.partner_id AND m.id = c.merchant_id
		WHERE c.api_key_hash = ? AND c.enabled AND m.enabled`, partner.HashAPIKey(r.APIKey)).Scan(ctx, &row)
	known := err == nil
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("load merchant credential: %w", err)
	}
	pub := dummyKey
	if known {
		pub = ed25519.PublicKey(row.PublicKey)
	}
	valid := Verify(pub, sig, Canonical(r.Timestamp, r.Method, r.PathQuery, r.Body, r.IdempotencyKey))
	if !known || !valid {
		return nil, errBadSignature
	}

	p := new(partner.Partner)
	if err := db.NewSelect().Model(p).Where("id = ?", row.PartnerID).Scan(ctx); err != nil {
		return nil, fmt.Errorf("load partner of merchant: %w", err)
	}
	if !p.APIEnabled {
		return nil, apperr.New(apperr.CodePartnerDisabled, "API access is disabled for this partner")
	}
	m := new(Merchant)
	if err := db.NewSelect().Model(m).Where("partner_id = ? AND id = ?", row.PartnerID, row.MerchantID).Scan(ctx); err != nil {
		return nil, fmt.Errorf("load merchant: %w", err)
	}
	if err := s.remember(ctx, db, row.PartnerID, sig, time.Unix(ts, 0)); err != nil {
		return nil, err
	}
	if _, err := db.NewUpdate().Model((*Credential)(nil)).Set("last_used_at = ?", now.UTC()).
		Where("partner_id = ? AND id = ?", row.PartnerID, row.ID).
		Where("(last_used_at IS NULL OR last_used_at < ?)", now.UTC().Add(-time.Minute)).Exec(ctx); err != nil {
		return nil, fmt.Errorf("touch merchant credential: %w", err)
	}
	return &Principal{Partner: p, Merchant: m, CredentialID: row.ID}, nil
}

// remember records the signature in the replay cache shared with partner
// signatures (the "merchant:" prefix keeps the two digests apart) until it
// can no longer pass the timestamp check.
func (s *Service) remember(ctx context.Context, db bun.IDB, partnerID uuid.UUID, sig []byte, ts time.Time) error {
	digest := sha256.Sum256(append([]byte("merchant:"), sig...))
	res, err := db.NewRaw(
		"INSERT INTO replay_cache (partner_id, digest, expires_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
		partnerID, digest[:], ts.Add(s.Skew+time.Minute).UTC(),
	).Exec(ctx)
	if err != nil {
		return fmt.Errorf("replay cache: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return apperr.New(apperr.CodeSignatureReplayed, "this signature was already used; sign each request afresh")
	}
	return nil
}
