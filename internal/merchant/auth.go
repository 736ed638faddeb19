package merchant

import (
	"bytes"
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
	// DeferReplay leaves a write's replay-cache entry to the caller
	// (Service.Remember): MerchantWrite records it inside the write's
	// transaction after the idempotency layer had its chance to answer a
	// retry with the stored response. Without it a write is recorded here,
	// and a repeat refused. Reads are never recorded.
	DeferReplay bool
}

// Principal is an authenticated merchant.
type Principal struct {
	Partner      *partner.Partner
	Merchant     *Merchant
	CredentialID uuid.UUID
	// replay is the write still to be remembered (DeferReplay); nil for a
	// read or once remembered by Authenticate.
	replay *replay
}

// replay is a verified merchant write to record in replay_cache.
type replay struct {
	partnerID uuid.UUID
	// digest keys the signature ("merchant:" + its bytes, as before
	// request hashes were stored, so older entries still match).
	digest []byte
	// request identifies the request the signature was first used for.
	request []byte
	expires time.Time
	// keyed: the write carried an Idempotency-Key (the refusal of a
	// repeat then cannot advise adding one).
	keyed bool
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
// and a bad signature answer the same INVALID_SIGNATURE.
//
// Replays follow the partner schemes (docs/auth.md, "Replays, retries and
// request binding"). The signature covers the method, path and query, body
// and Idempotency-Key, so it can only ever serve the request it was made
// for; what is left is the same request again. A read (GET, HEAD) is never
// refused nor recorded: a cashier's page polls a voucher with the same
// signature within a second. A write is recorded in the replay cache, and
// only after it verified, so nobody can burn another merchant's signatures:
// here, unless r.DeferReplay hands it to Remember in the write's
// transaction.
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
		WHERE c.api_key_hash = ? AND c.enabled AND m.enabled
		  AND (c.expires_at IS NULL OR c.expires_at > ?)`, partner.HashAPIKey(r.APIKey), s.Now().UTC()).Scan(ctx, &row)
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
	if err := p.CheckEnabled(partner.AudienceOperator); err != nil {
		return nil, err
	}
	m := new(Merchant)
	if err := db.NewSelect().Model(m).Where("partner_id = ? AND id = ?", row.PartnerID, row.MerchantID).Scan(ctx); err != nil {
		return nil, fmt.Errorf("load merchant: %w", err)
	}
	var rp *replay
	if !isSafe(r.Method) {
		digest := sha256.Sum256(append([]byte("merchant:"), sig...))
		rp = &replay{
			partnerID: row.PartnerID, digest: digest[:], request: requestDigest(r.Method, r.PathQuery, r.Body),
			expires: time.Unix(ts, 0).Add(s.Skew + time.Minute).UTC(), keyed: r.IdempotencyKey != "",
		}
		if !r.DeferReplay {
			if err := s.remember(ctx, db, rp); err != nil {
				return nil, err
			}
			rp = nil
		}
	}
	if _, err := db.NewUpdate().Model((*Credential)(nil)).Set("last_used_at = ?", now.UTC()).
		Where("partner_id = ? AND id = ?", row.PartnerID, row.ID).
		Where("(last_used_at IS NULL OR last_used_at < ?)", now.UTC().Add(-time.Minute)).Exec(ctx); err != nil {
		return nil, fmt.Errorf("touch merchant credential: %w", err)
	}
	return &Principal{Partner: p, Merchant: m, CredentialID: row.ID, replay: rp}, nil
}

// isSafe reports whether a method only reads (and so is never a replay).
func isSafe(method string) bool { return method == "GET" || method == "HEAD" }

// requestDigest identifies a request: method, path and query, body hash.
func requestDigest(method, pathQuery string, body []byte) []byte {
	sum := sha256.Sum256(body)
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00", method, pathQuery)
	h.Write(sum[:])
	return h.Sum(nil)
}

// Remember records a deferred write's signature in the replay cache, in db:
// the write's transaction, after its Idempotency-Key was claimed (so a
// retry with the key got the stored answer before it could be refused
// here) and before its work (so a repeat never runs the work, not even a
// counted wrong one-time code); or the pool after the write failed and
// rolled back, so a refused request cannot be replayed later, when it
// might succeed. A repeat answers SIGNATURE_REPLAYED. It does nothing for
// a read or a write Authenticate already recorded.
func (s *Service) Remember(ctx context.Context, db bun.IDB, p *Principal) error {
	if p == nil || p.replay == nil {
		return nil
	}
	return s.remember(ctx, db, p.replay)
}

// remember inserts the entry of r into the replay cache shared with partner
// signatures (the "merchant:" prefix keeps the two digests apart) until the
// signature can no longer pass the timestamp check. A concurrent duplicate
// blocks on the first's uncommitted row and sees it once that commits.
func (s *Service) remember(ctx context.Context, db bun.IDB, r *replay) error {
	var inserted []int
	err := db.NewRaw(
		"INSERT INTO replay_cache (partner_id, digest, request_hash, expires_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING 1",
		r.partnerID, r.digest, r.request, r.expires,
	).Scan(ctx, &inserted)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("replay cache: %w", err)
	}
	if len(inserted) == 1 {
		return nil
	}
	var seen []byte
	if err := db.NewRaw("SELECT request_hash FROM replay_cache WHERE partner_id = ? AND digest = ?", r.partnerID, r.digest).
		Scan(ctx, &seen); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("replay cache: %w", err)
	}
	// An Ed25519 signature verifies for one message only, so another
	// request with these bytes means a forgery or a bug: refuse it all the
	// same. Entries from before request hashes were stored count as the
	// same request (they expire within minutes of the upgrade).
	if seen != nil && !bytes.Equal(seen, r.request) {
		return apperr.New(apperr.CodeSignatureReused, "this signature was already used for another request; sign each request afresh")
	}
	if r.keyed {
		return apperr.New(apperr.CodeSignatureReplayed,
			"this write was already received with this signature and did not succeed, so nothing is stored under its Idempotency-Key; sign a new request (a new X-Timestamp) to try again")
	}
	return apperr.New(apperr.CodeSignatureReplayed,
		"this write was already received with this signature; to retry a write safely send an Idempotency-Key header (signed; the retry then gets the stored answer), otherwise sign a new request")
}
