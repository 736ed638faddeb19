package auth

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"github.com/perkshq/perks/internal/apperr"
)

// Header names of the Ed25519 scheme (seed 004). X-Signature is shared with
// the HMAC scheme; X-API-Key tells them apart.
const (
	HeaderAPIKey    = "X-API-Key"
	HeaderTimestamp = "X-Timestamp"
)

// Ed25519Message is the canonical string an Ed25519 partner signs
// (DESIGN.md section 4.2):
//
//	timestamp "\n" METHOD "\n" path?query "\n" hex(sha256(rawBody)) "\n" idempotencyKey
//
// idempotencyKey is "" when the request carries none.
func Ed25519Message(ts, method, pathQuery string, body []byte, idempotencyKey string) []byte {
	sum := sha256.Sum256(body)
	var b strings.Builder
	b.Grow(len(ts) + len(method) + len(pathQuery) + 64 + len(idempotencyKey) + 4)
	b.WriteString(ts)
	b.WriteByte('\n')
	b.WriteString(method)
	b.WriteByte('\n')
	b.WriteString(pathQuery)
	b.WriteByte('\n')
	b.WriteString(hex.EncodeToString(sum[:]))
	b.WriteByte('\n')
	b.WriteString(idempotencyKey)
	return []byte(b.String())
}

// SignEd25519 returns the X-Signature value for a request.
func SignEd25519(key ed25519.PrivateKey, ts, method, pathQuery string, body []byte, idempotencyKey string) string {
	return base64.StdEncoding.EncodeToString(ed25519.Sign(key, Ed25519Message(ts, method, pathQuery, body, idempotencyKey)))
}

// dummyEd25519 keeps unknown API keys on the same code path as known ones.
var dummyEd25519 = ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)).Public().(ed25519.PublicKey)

func decodeBase64(s string) ([]byte, bool) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, true
		}
	}
	return nil, false
}

// authenticateEd25519 verifies X-API-Key / X-Timestamp / X-Signature.
func (a *PartnerAuthenticator) authenticateEd25519(ctx context.Context, r Request) (*PartnerPrincipal, error) {
	apiKey := r.Header.Get(HeaderAPIKey)
	rawTS := strings.TrimSpace(r.Header.Get(HeaderTimestamp))
	sigText := strings.TrimSpace(r.Header.Get(HeaderSignature))
	if len(apiKey) > 200 || rawTS == "" || sigText == "" || len(sigText) > 200 {
		return nil, errBadSignature
	}
	sig, ok := decodeBase64(sigText)
	if !ok || len(sig) != ed25519.SignatureSize {
		return nil, errBadSignature
	}
	ts, err := strconv.ParseInt(rawTS, 10, 64)
	if err != nil || ts <= 0 {
		return nil, errBadSignature
	}
	idem, err := IdempotencyKey(r.Header)
	if err != nil {
		return nil, err
	}
	if idem == "" && IsWrite(r.Method) {
		return nil, apperr.Field(apperr.CodeIdempotencyKeyNeeded, HeaderIdempotencyKey,
			"requests signed with an API key must carry an Idempotency-Key on every write")
	}
	if err := CheckTimestamp(time.Unix(ts, 0), a.Now(), a.Skew); err != nil {
		return nil, err
	}
	key, err := a.Partners.Auth().Ed25519ByAPIKey(ctx, a.DB, apiKey)
	pub := dummyEd25519
	if err == nil {
		pub = key.PublicKey
	} else if !apperr.Is(err, apperr.CodeNotFound) {
		return nil, err
	}
	msg := Ed25519Message(rawTS, r.Method, r.PathQuery, r.Body, idem)
	if !ed25519.Verify(pub, msg, sig) || key == nil {
		return nil, errBadSignature
	}
	p, err := a.Partners.Auth().ByID(ctx, a.DB, key.PartnerID)
	if err != nil {
		return nil, err
	}
	// Reads are not recorded; a write's signature covers the request, the
	// entry carries its digest all the same (one rule for every scheme).
	var entries []replayEntry
	if !IsSafe(r.Method) {
		req := requestDigest(r.Method, r.PathQuery, r.Body)
		entries = []replayEntry{{digest: proofDigest("ed25519", sig, req), request: req}}
	}
	return a.finish(ctx, r, verified{
		partner: p, credentialID: key.CredentialID, scheme: SchemeEd25519, replay: entries,
		signedAt: time.Unix(ts, 0), idempotencyKey: idem,
	})
}
