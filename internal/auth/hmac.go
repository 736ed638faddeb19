// Package auth authenticates partner back ends (signed requests) and
// consumers (partner-minted JWTs). It returns *apperr.Error values with the
// codes of docs/errors.md and never says which part of a credential was
// wrong beyond what the caller can already know.
package auth

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/database"
	"github.com/perkshq/perks/internal/partner"
)

// Header names of the HMAC scheme (seed 000).
const (
	HeaderPartnerSlug = "X-Partner-Slug"
	HeaderSignature   = "X-Signature"
)

// Headers is the subset of http.Header the authenticators read.
type Headers interface {
	Get(key string) string
}

// Request is what a signature covers.
type Request struct {
	Method    string
	PathQuery string // the request URI as sent: path and raw query
	Body      []byte
	Header    Headers
	// ClientIP is the caller's address (RemoteAddr, or X-Forwarded-For
	// behind a trusted proxy), checked against the partner's allowed
	// origins. The zero Addr matches no origin entry.
	ClientIP netip.Addr
	// DeferReplay leaves a write's replay-cache entry to the caller (see
	// PartnerPrincipal.Replay): the write records it in its own transaction,
	// after the idempotency layer had the chance to answer a retry with the
	// stored response, instead of refusing the retry here. Reads are never
	// deferred.
	DeferReplay bool
}

// Replay is a verified request still to be remembered in the replay cache
// (docs/auth.md, "Replays"). A replay is the same request again: same
// credential, method, path and query, body and signature. Entries are keyed
// by a digest of the credential's proof (and, for HMAC and Ed25519, of the
// request too, so a different request carrying the same v1 bytes is not a
// replay); request_hash remembers which request a request JWT (or its jti)
// was first used for, so one token can never serve another request.
type Replay struct {
	partnerID uuid.UUID
	entries   []replayEntry
	signedAt  time.Time
	// write: a repeat of the same request is refused (SIGNATURE_REPLAYED)
	// unless the idempotency layer answers it first; a repeated read is
	// accepted.
	write bool
}

// replayEntry is one row of replay_cache.
type replayEntry struct {
	digest  []byte
	request []byte
}

// requestDigest identifies a request: method, path and query, body hash.
func requestDigest(method, pathQuery string, body []byte) []byte {
	sum := sha256.Sum256(body)
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00", method, pathQuery)
	h.Write(sum[:])
	return h.Sum(nil)
}

// proofDigest is the replay-cache key of a credential proof (a MAC, an
// Ed25519 signature) used for one request.
func proofDigest(scheme string, proof, request []byte) []byte {
	h := sha256.New()
	h.Write([]byte(scheme))
	h.Write([]byte{0})
	h.Write(proof)
	h.Write(request)
	return h.Sum(nil)
}

// IsSafe reports whether a method only reads. Safe requests are never
// refused as replays (a poller repeats the same GET; seed 000 reads two
// users in one second with the same v1 signature), and HMAC and Ed25519
// do not even record them.
func IsSafe(method string) bool { return method == "GET" || method == "HEAD" }

// PartnerPrincipal is an authenticated partner back end.
type PartnerPrincipal struct {
	Partner      *partner.Partner
	CredentialID uuid.UUID
	Scheme       string
	// IdempotencyKey is the validated Idempotency-Key header, or "". It is
	// required on writes of the ed25519 scheme (and signed there); for the
	// other schemes it is optional. The idempotency layer reads it here.
	IdempotencyKey string
	// Replay, when a write asked to defer it, must be remembered with
	// PartnerAuthenticator.Remember in the write's transaction (and on the
	// pool when the write fails).
	Replay *Replay
}

// Schemes, as named in partners.allowed_schemes.
const (
	SchemeHMAC       = partner.SchemeHMAC
	SchemeEd25519    = partner.SchemeEd25519
	SchemeRequestJWT = partner.SchemeRequestJWT
)

// PartnerAuthenticator verifies signed partner requests and applies the
// partner-level controls that do not need the response (access switch,
// allowed schemes, allowed origins, replay cache). Rate limits are applied
// by the transport, which owns the response headers.
type PartnerAuthenticator struct {
	DB       bun.IDB
	Partners *partner.Service
	Skew     time.Duration
	Now      func() time.Time
	// Origins checks allowed origins; nil allows any origin (tests of
	// other concerns).
	Origins *OriginChecker
}

// Authenticate picks the scheme from the headers present: X-API-Key is
// Ed25519 (seed 004), Authorization: Bearer is a request JWT (seed 001),
// anything else is HMAC (seed 000).
func (a *PartnerAuthenticator) Authenticate(ctx context.Context, r Request) (*PartnerPrincipal, error) {
	switch {
	case r.Header.Get(HeaderAPIKey) != "":
		return a.authenticateEd25519(ctx, r)
	case r.Header.Get(HeaderAuthorization) != "":
		return a.authenticateRequestJWT(ctx, r, false)
	default:
		return a.authenticateHMAC(ctx, r)
	}
}

// verified is a credential that verified, before the partner controls.
type verified struct {
	partner      *partner.Partner
	credentialID uuid.UUID
	scheme       string
	// replay are the replay-cache entries of this request (HMAC may carry
	// several verified entries; all are remembered). None for a read that
	// needs no record.
	replay []replayEntry
	// lastUsedAt of the credential, to skip touching it when recent.
	lastUsedAt *time.Time
	// signedAt is the signature's timestamp; the replay entry outlives the
	// skew window around it.
	signedAt       time.Time
	idempotencyKey string
}

// finish applies the partner-level controls to a verified credential, in an
// order that never tells an unauthenticated caller anything: access switch,
// allowed scheme, allowed origin, then the replay cache (so a refused
// request does not burn its signature). A deferred write leaves the replay
// cache to its transport.
func (a *PartnerAuthenticator) finish(ctx context.Context, r Request, v verified) (*PartnerPrincipal, error) {
	p := v.partner
	if err := p.CheckEnabled(partner.AudienceOperator); err != nil {
		return nil, err
	}
	if !p.AllowsScheme(v.scheme) {
		return nil, apperr.New(apperr.CodeSchemeNotAllowed, "this partner may not authenticate with the %s scheme", v.scheme)
	}
	if a.Origins != nil {
		if err := a.Origins.Check(ctx, p.AllowedOrigins, r.ClientIP); err != nil {
			return nil, err
		}
	}
	replay := &Replay{partnerID: p.ID, entries: v.replay, signedAt: v.signedAt, write: !IsSafe(r.Method)}
	if !r.DeferReplay || !replay.write {
		if err := a.Remember(ctx, a.DB, replay); err != nil {
			return nil, err
		}
		replay = nil
	}
	// Use is recorded at most once a minute: the row's last_used_at, or this
	// process's own last touch when the credential came from the cache.
	if now := a.Now(); (v.lastUsedAt == nil || partner.NeedsTouch(v.lastUsedAt, now)) && !a.Partners.Auth().TouchedRecently(v.credentialID, now) {
		if err := a.Partners.TouchCredential(ctx, a.DB, p.ID, v.credentialID); err != nil {
			return nil, err
		}
	}
	return &PartnerPrincipal{Partner: p, CredentialID: v.credentialID, Scheme: v.scheme, IdempotencyKey: v.idempotencyKey, Replay: replay}, nil
}

// Remember records a request in the replay cache, in db: the write's
// transaction (after the idempotency layer had its chance to answer a retry
// with the stored response), or the pool after the write failed, so that a
// refused request cannot be replayed later either. It answers
// SIGNATURE_REPLAYED when this write was seen before and
// SIGNATURE_REUSED when the signature, request JWT or jti served another
// request; a repeated read is accepted.
func (a *PartnerAuthenticator) Remember(ctx context.Context, db bun.IDB, r *Replay) error {
	if r == nil || len(r.entries) == 0 {
		return nil
	}
	return a.rememberRequest(ctx, db, r)
}

// HeaderIdempotencyKey names the idempotency key of a partner write.
const HeaderIdempotencyKey = "Idempotency-Key"

// IsWrite reports whether a method changes state (and so needs an
// idempotency key under the ed25519 scheme).
func IsWrite(method string) bool {
	switch method {
	case "POST", "PUT", "PATCH", "DELETE":
		return true
	}
	return false
}

// IdempotencyKey validates the Idempotency-Key header: absent is "", else
// 1-255 printable ASCII characters.
func IdempotencyKey(h Headers) (string, error) {
	k := h.Get(HeaderIdempotencyKey)
	if k == "" {
		if _, present := headerPresent(h, HeaderIdempotencyKey); present {
			return "", apperr.Field(apperr.CodeIdempotencyKeyInvalid, HeaderIdempotencyKey, "the Idempotency-Key header is empty; use 1 to 255 printable ASCII characters")
		}
		return "", nil
	}
	if len(k) > 255 {
		return "", apperr.Field(apperr.CodeIdempotencyKeyInvalid, HeaderIdempotencyKey, "the Idempotency-Key is longer than 255 characters")
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return "", apperr.Field(apperr.CodeIdempotencyKeyInvalid, HeaderIdempotencyKey, "the Idempotency-Key must be printable ASCII")
		}
	}
	return k, nil
}

// headerPresent tells an empty header from an absent one when h is an
// http.Header-like map.
func headerPresent(h Headers, name string) (string, bool) {
	if m, ok := h.(interface{ Values(string) []string }); ok {
		v := m.Values(name)
		if len(v) > 0 {
			return v[0], true
		}
	}
	return "", false
}

var errBadSignature = apperr.New(apperr.CodeInvalidSignature, "the request signature does not verify")

// signature is one parsed X-Signature header.
type signature struct {
	timestamp int64
	rawTS     string
	v1, v2    [][]byte
}

// maxSignatureEntries bounds the work one header can cause.
const maxSignatureEntries = 8

func parseSignature(h string) (*signature, error) {
	if h == "" || len(h) > 2048 {
		return nil, errBadSignature
	}
	sig := &signature{}
	entries := strings.Split(h, ",")
	if len(entries) > maxSignatureEntries+1 {
		return nil, errBadSignature
	}
	for _, e := range entries {
		k, v, ok := strings.Cut(strings.TrimSpace(e), "=")
		if !ok {
			return nil, errBadSignature
		}
		switch k {
		case "t":
			if sig.rawTS != "" {
				return nil, errBadSignature
			}
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 {
				return nil, errBadSignature
			}
			sig.timestamp, sig.rawTS = n, v
		case "v1", "v2":
			b, err := hex.DecodeString(v)
			if err != nil || len(b) != sha256.Size {
				return nil, errBadSignature
			}
			if k == "v1" {
				sig.v1 = append(sig.v1, b)
			} else {
				sig.v2 = append(sig.v2, b)
			}
		default:
			// Unknown schemes are ignored so new versions can be added
			// without breaking older servers.
		}
	}
	if sig.rawTS == "" || len(sig.v1)+len(sig.v2) == 0 {
		return nil, errBadSignature
	}
	return sig, nil
}

// SignV1 is the seed-000 signature: hex(HMAC-SHA256(secret, t + "." + body)).
func SignV1(secret []byte, ts string, body []byte) string {
	return hex.EncodeToString(macV1(secret, ts, body))
}

func macV1(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// SignV2 also covers the method and the path with its query, so a signature
// cannot be replayed against another route or resource.
func SignV2(secret []byte, ts, method, pathQuery string, body []byte) string {
	return hex.EncodeToString(macV2(secret, ts, method, pathQuery, body))
}

func macV2(secret []byte, ts, method, pathQuery string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	fmt.Fprintf(m, "%s.%s.%s.", ts, method, pathQuery)
	m.Write(body)
	return m.Sum(nil)
}

// CheckTimestamp refuses timestamps more than skew away from now, in both
// directions.
func CheckTimestamp(ts, now time.Time, skew time.Duration) error {
	d := now.Sub(ts)
	if d > skew || d < -skew {
		return apperr.New(apperr.CodeTimestampOutOfRange, "the signature timestamp is more than %d seconds away from the server's clock", int(skew.Seconds()))
	}
	return nil
}

// dummySecret keeps unknown-partner requests on the same code path (and
// roughly the same time) as known ones.
var dummySecret = []byte("perks-unknown-partner-dummy-secret")

// authenticateHMAC verifies the x-partner-slug / x-signature scheme.
func (a *PartnerAuthenticator) authenticateHMAC(ctx context.Context, r Request) (*PartnerPrincipal, error) {
	sig, err := parseSignature(r.Header.Get(HeaderSignature))
	if err != nil {
		return nil, err
	}
	idem, err := IdempotencyKey(r.Header)
	if err != nil {
		return nil, err
	}
	now := a.Now()
	if err := CheckTimestamp(time.Unix(sig.timestamp, 0), now, a.Skew); err != nil {
		return nil, err
	}
	slug := r.Header.Get(HeaderPartnerSlug)
	p, s, err := a.Partners.Auth().BySlugWithSecrets(ctx, a.DB, slug, partner.KindHMAC)
	secrets := []partner.SharedSecret{{Secret: dummySecret}}
	known := false
	switch {
	case err == nil:
		if len(s) > 0 {
			secrets, known = s, true
		}
	case !apperr.Is(err, apperr.CodeNotFound):
		return nil, err
	}

	var matched []byte
	var credID uuid.UUID
	var lastUsed *time.Time
	// every MAC of the header that verified: all are remembered, so a
	// captured "v1=…,v2=…" header cannot be replayed with one entry dropped.
	var verifiedMACs []verifiedMAC
	v1Only := false
	match := func(got [][]byte, want []byte) bool {
		hit := false
		for _, g := range got {
			// Compare every candidate so timing does not depend on which matched.
			if hmac.Equal(g, want) {
				hit = true
			}
		}
		return hit
	}
	requireV2 := p != nil && p.RequireHMACV2
	for _, s := range secrets {
		if len(sig.v2) > 0 {
			want := macV2(s.Secret, sig.rawTS, r.Method, r.PathQuery, r.Body)
			if match(sig.v2, want) {
				verifiedMACs = append(verifiedMACs, verifiedMAC{mac: want, v2: true})
				if matched == nil {
					matched, credID, lastUsed = want, s.CredentialID, s.LastUsedAt
				}
			}
		}
		if len(sig.v1) > 0 {
			want := macV1(s.Secret, sig.rawTS, r.Body)
			if match(sig.v1, want) {
				verifiedMACs = append(verifiedMACs, verifiedMAC{mac: want})
				switch {
				case requireV2:
					v1Only = true
				case matched == nil:
					matched, credID, lastUsed = want, s.CredentialID, s.LastUsedAt
				}
			}
		}
	}
	if known && matched == nil && v1Only {
		// The caller proved it holds the secret, so saying why is safe; the
		// v1 signature does not cover the method and path this partner
		// insists on (a replayed v1 signature lands here too).
		return nil, apperr.New(apperr.CodeSignatureV2Required, "this partner requires v2 signatures, which cover the method and path")
	}
	if !known || matched == nil {
		return nil, errBadSignature
	}
	return a.finish(ctx, r, verified{
		partner: p, credentialID: credID, scheme: SchemeHMAC, replay: hmacReplay(verifiedMACs, r), lastUsedAt: lastUsed,
		signedAt: time.Unix(sig.timestamp, 0), idempotencyKey: idem,
	})
}

// verifiedMAC is one entry of the header that verified.
type verifiedMAC struct {
	mac []byte
	v2  bool
}

// hmacReplay is the replay-cache entries of a verified HMAC request, keyed
// by each MAC (not the header, so junk entries added to a captured header
// do not make it new). A v2 MAC covers the method, path, query and body: a
// read needs no record, a write is remembered once. A v1 MAC covers only
// the timestamp and body, so the same bytes verify for every body-less
// request of that second: it is bound like an unbound request JWT, to "any
// read" when first used for a read (two GETs of seed 000 in one second
// work) and to exactly its request when first used for a write, so an
// observed GET signature never deletes a user and a DELETE signature never
// deletes a second one.
func hmacReplay(macs []verifiedMAC, r Request) []replayEntry {
	exact := requestDigest(r.Method, r.PathQuery, r.Body)
	var entries []replayEntry
	seen := map[string]bool{}
	for _, m := range macs {
		if seen[string(m.mac)] { // two enabled credentials with one secret give one MAC
			continue
		}
		seen[string(m.mac)] = true
		switch {
		case !IsSafe(r.Method):
			entries = append(entries, replayEntry{digest: proofDigest("hmac", m.mac, nil), request: exact})
		case !m.v2:
			entries = append(entries, replayEntry{digest: proofDigest("hmac", m.mac, nil), request: safeRequest})
		}
	}
	return entries
}

// rememberRequest inserts the entries of r. A conflicting entry is the
// same proof seen before: with the same request hash it is a repeat (fine
// for a read, SIGNATURE_REPLAYED for a write), with another one a request
// JWT reused for a different request. For HMAC the digest is of the
// matching MAC itself, not the header, so adding junk entries to a
// captured header does not make it new. Entries outlive the skew window
// and are then pruned by a periodic job. A concurrent duplicate blocks on
// the uncommitted row of the first and sees it once that commits.
func (a *PartnerAuthenticator) rememberRequest(ctx context.Context, db bun.IDB, r *Replay) error {
	expires := r.signedAt.Add(a.Skew + time.Minute).UTC()
	inserted, err := insertReplay(ctx, db, r, expires)
	if err != nil {
		return fmt.Errorf("replay cache: %w", err)
	}
	return a.judgeRemembered(ctx, db, r, inserted)
}

// RememberSQL is Remember's insert as SQL to run inside another statement
// (the idempotency layer sends it with the write's stored answer: one round
// trip for both), its placeholders numbered from first; it returns the hex
// digests it inserted as column v. Judge what it returned with
// JudgeRemembered in the same transaction. It returns "" when r needs no
// record.
func (a *PartnerAuthenticator) RememberSQL(r *Replay, first int) (string, []any) {
	if r == nil || len(r.entries) == 0 {
		return "", nil
	}
	digests, hashes := make([][]byte, len(r.entries)), make([][]byte, len(r.entries))
	for i, e := range r.entries {
		digests[i], hashes[i] = e.digest, e.request
	}
	p := func(i int) string { return "$" + strconv.Itoa(first+i) }
	return `INSERT INTO replay_cache (partner_id, digest, request_hash, expires_at)
	SELECT ` + p(0) + `::uuid, d, h, ` + p(3) + `::timestamptz FROM unnest(` + p(1) + `::bytea[], ` + p(2) + `::bytea[]) AS x (d, h)
	ON CONFLICT DO NOTHING RETURNING encode(digest, 'hex') AS v`,
		[]any{r.partnerID, digests, hashes, r.signedAt.Add(a.Skew + time.Minute).UTC()}
}

// JudgeRemembered is Remember's verdict on what RememberSQL inserted.
func (a *PartnerAuthenticator) JudgeRemembered(ctx context.Context, db bun.IDB, r *Replay, inserted []string) error {
	if r == nil || len(r.entries) == 0 {
		return nil
	}
	return a.judgeRemembered(ctx, db, r, inserted)
}

// judgeRemembered decides from the entries of r that were inserted: all of
// them is a new request; otherwise the earlier rows say whether it is a
// repeat (fine for a read, SIGNATURE_REPLAYED for a write) or a proof reused
// for another request (SIGNATURE_REUSED).
func (a *PartnerAuthenticator) judgeRemembered(ctx context.Context, db bun.IDB, r *Replay, inserted []string) error {
	if len(inserted) == len(r.entries) {
		return nil
	}
	fresh := map[string]bool{}
	for _, d := range inserted {
		fresh[d] = true
	}
	var seen []struct {
		Digest      string `bun:"digest"`
		RequestHash []byte `bun:"request_hash"`
	}
	var digests []string
	want := map[string][]byte{}
	for _, e := range r.entries {
		d := hex.EncodeToString(e.digest)
		want[d] = e.request
		if !fresh[d] {
			digests = append(digests, d)
		}
	}
	if err := db.NewRaw("SELECT encode(digest, 'hex') AS digest, request_hash FROM replay_cache "+
		"WHERE partner_id = ? AND digest IN (SELECT decode(x, 'hex') FROM unnest(?::text[]) AS x)",
		r.partnerID, pgdialect.Array(digests)).Scan(ctx, &seen); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("replay cache: %w", err)
	}
	for _, s := range seen {
		// Rows from before request hashes were stored count as the same
		// request: they expire within minutes of the upgrade.
		if s.RequestHash != nil && !bytes.Equal(s.RequestHash, want[s.Digest]) {
			return errSignatureReused
		}
	}
	if !r.write {
		return nil
	}
	return apperr.New(apperr.CodeSignatureReplayed,
		"this write was already received with this signature; to retry a write safely send an Idempotency-Key header (the retry then gets the stored answer), otherwise sign a new request")
}

// insertReplaySQL records a request's proofs: every partner write runs
// it, so it is one prepared statement whatever the number of entries.
const insertReplaySQL = `INSERT INTO replay_cache (partner_id, digest, request_hash, expires_at)
	SELECT $1, d, h, $4 FROM unnest($2::bytea[], $3::bytea[]) AS x (d, h)
	ON CONFLICT DO NOTHING RETURNING encode(digest, 'hex')`

// insertReplay runs insertReplaySQL and returns the hex digests inserted.
func insertReplay(ctx context.Context, db bun.IDB, r *Replay, expires time.Time) ([]string, error) {
	digests, hashes := make([][]byte, len(r.entries)), make([][]byte, len(r.entries))
	for i, e := range r.entries {
		digests[i], hashes[i] = e.digest, e.request
	}
	rows, err := database.Query(ctx, db, insertReplaySQL, r.partnerID, digests, hashes, expires)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var inserted []string
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			return nil, err
		}
		inserted = append(inserted, d)
	}
	return inserted, rows.Err()
}

var errSignatureReused = apperr.New(apperr.CodeSignatureReused,
	"this signature (or request JWT, or jti) was already used for another request; sign each request afresh: HMAC v2 signatures and request JWTs with htm/htu or a fresh jti are bound to their request")

// PruneReplayCache deletes expired replay-cache entries.
func PruneReplayCache(ctx context.Context, db bun.IDB, now time.Time) (int64, error) {
	res, err := db.NewRaw("DELETE FROM replay_cache WHERE expires_at < ?", now.UTC()).Exec(ctx)
	if err != nil {
		return 0, fmt.Errorf("prune replay cache: %w", err)
	}
	return res.RowsAffected()
}

// IsAuthError reports whether err is one of the authentication codes.
func IsAuthError(err error) bool {
	var e *apperr.Error
	return errors.As(err, &e) && apperr.Lookup(e.Code).Status == 401
}
