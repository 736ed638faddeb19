package auth

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"time"

	"github.com/perkshq/perks/internal/partner"
)

// maxVerifiedTokens bounds the verified-token cache. An entry is a digest,
// a partner and the claims: about a kilobyte, so the cache stays under
// about 20 MiB. When full, an arbitrary entry makes room.
const maxVerifiedTokens = 20_000

// tokenCache remembers consumer tokens whose signature verified, so that a
// webview sending the same token on every request pays for the signature
// check (and the JWT's second parse) once per replica, not on every call.
//
// What a hit skips is only what cannot change for the same bytes while
// the partner cache's epoch stands: the signature, the partner the token
// resolved to and the key that verified it. Everything that depends on
// time is judged again on every hit (exp, nbf, iat, the age of a token
// without exp); the user read that follows (tokens issued before a logout,
// an anonymisation or an erasure) is never cached.
//
// Entries are keyed by a SHA-256 of the token's exact bytes and the
// X-Partner-Slug hint, so a token altered in any byte (a forged signature,
// a changed claim) is another key and is verified in full. An entry is
// served only while the partner cache's epoch is the one read before the
// entry's lookups began, and the cache serves (partner.Cache.Epoch): a
// disabled or deleted key, a partner switched off, a changed audience or
// issuer, on this replica or another (PostgreSQL's NOTIFY), a lost
// listener or this process's own write make every entry stale at once.
// Tokens verified by a key published at a JWKS URL are not cached: that
// set changes without a notification.
type tokenCache struct {
	mu      sync.Mutex
	entries map[[sha256.Size]byte]*verifiedToken
}

// verifiedToken is a token whose signature verified.
type verifiedToken struct {
	epoch    uint64
	partner  *partner.Partner
	claims   *consumerClaims
	issuedAt time.Time
	// noExpMaxAge is the verifying key's maximum age for tokens without exp.
	noExpMaxAge time.Duration
}

// tokenKey digests the token and the slug hint, length-prefixed so that no
// two pairs share a digest input.
func tokenKey(token, slugHint string) [sha256.Size]byte {
	h := sha256.New()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(slugHint)))
	h.Write(n[:])
	h.Write([]byte(slugHint))
	h.Write([]byte(token))
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// get returns the entry for key if it was stored at epoch.
func (c *tokenCache) get(key [sha256.Size]byte, epoch uint64) *verifiedToken {
	c.mu.Lock()
	defer c.mu.Unlock()
	v := c.entries[key]
	if v == nil {
		return nil
	}
	if v.epoch != epoch {
		delete(c.entries, key)
		return nil
	}
	return v
}

func (c *tokenCache) put(key [sha256.Size]byte, v *verifiedToken) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[[sha256.Size]byte]*verifiedToken{}
	}
	if _, ok := c.entries[key]; !ok && len(c.entries) >= maxVerifiedTokens {
		for k := range c.entries {
			delete(c.entries, k)
			break
		}
	}
	c.entries[key] = v
}

func (c *tokenCache) forget(key [sha256.Size]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, key)
}

// CachedTokens reports how many verified tokens this replica remembers,
// stale ones included until they are next looked up or make room.
func (a *ConsumerAuthenticator) CachedTokens() int {
	a.tokens.mu.Lock()
	defer a.tokens.mu.Unlock()
	return len(a.tokens.entries)
}
