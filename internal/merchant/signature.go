package merchant

import (
	"crypto/ed25519"
	"encoding/base64"
	"strings"

	"github.com/perkshq/perks/internal/auth"
)

// Header names of the Ed25519 request scheme (seed 004, DESIGN.md 4.2).
const (
	HeaderAPIKey         = "X-API-Key"
	HeaderTimestamp      = "X-Timestamp"
	HeaderSignature      = "X-Signature"
	HeaderIdempotencyKey = "Idempotency-Key"
)

// Canonical returns the bytes a merchant signs: the canonical string of
// DESIGN.md 4.2, the same as Ed25519 partner credentials sign
// (auth.Ed25519Message, the one definition):
//
//	timestamp + "\n" + METHOD + "\n" + path?query + "\n" + hex(sha256(rawBody)) + "\n" + idempotencyKey
//
// timestamp is the X-Timestamp header exactly as sent (Unix seconds),
// pathQuery the request URI as sent (path and raw query, no host), and
// idempotencyKey the Idempotency-Key header or "" without one. Hashing the
// body keeps the string small and unambiguous whatever the body contains;
// the idempotency key is covered so a captured request cannot be replayed
// under a fresh key.
func Canonical(timestamp, method, pathQuery string, body []byte, idempotencyKey string) []byte {
	return auth.Ed25519Message(timestamp, strings.ToUpper(method), pathQuery, body, idempotencyKey)
}

// Sign returns the X-Signature value for canonical: standard base64 of the
// Ed25519 signature. Clients (and tests) use it; the server only verifies.
func Sign(priv ed25519.PrivateKey, canonical []byte) string {
	return base64.StdEncoding.EncodeToString(ed25519.Sign(priv, canonical))
}

// DecodeSignature parses an X-Signature value: base64 (standard or URL
// alphabet, padded or not) of exactly 64 bytes. The decoded bytes, not the
// header text, are what the replay cache remembers, so re-encoding a
// captured signature does not make it new.
func DecodeSignature(s string) ([]byte, bool) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 128 {
		return nil, false
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == ed25519.SignatureSize {
			return b, true
		}
	}
	return nil, false
}

// Verify reports whether sig is pub's signature of canonical. Go's ed25519
// rejects non-canonical signatures, so a valid signature has exactly one
// byte encoding and cannot be altered into a "new" one.
func Verify(pub ed25519.PublicKey, sig, canonical []byte) bool {
	return len(pub) == ed25519.PublicKeySize && len(sig) == ed25519.SignatureSize && ed25519.Verify(pub, canonical, sig)
}
