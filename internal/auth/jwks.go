package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/perkshq/perks/internal/partner"
)

// JWKS fetches and caches the key sets partners publish at their JWKS URL.
// Each replica keeps its own cache, per partner:
//
//   - the set is fetched on first use and again when older than TTL, or when
//     a token names a kid the set lacks; never more often than MinInterval
//     per partner, whatever the traffic;
//   - a fetch is bounded by Timeout and MaxBytes; concurrent requests share
//     one fetch;
//   - a failed fetch keeps the last good set.
type JWKS struct {
	Client      *http.Client
	Timeout     time.Duration
	MaxBytes    int64
	MinInterval time.Duration
	TTL         time.Duration
	// AllowHTTP permits http:// URLs (development and tests only).
	AllowHTTP bool
	Now       func() time.Time
	Log       *slog.Logger

	mu      sync.Mutex
	entries map[uuid.UUID]*jwksEntry
}

type jwksEntry struct {
	url string
	// fetch serialises fetches; the fields below are guarded by JWKS.mu.
	fetch       sync.Mutex
	keys        []partner.VerificationKey
	fetchedAt   time.Time // last good fetch
	attemptedAt time.Time // last attempt
}

func (j *JWKS) entry(partnerID uuid.UUID, u string) *jwksEntry {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.entries == nil {
		j.entries = map[uuid.UUID]*jwksEntry{}
	}
	e := j.entries[partnerID]
	if e == nil || e.url != u {
		e = &jwksEntry{url: u}
		j.entries[partnerID] = e
	}
	return e
}

func (j *JWKS) snapshot(e *jwksEntry) (keys []partner.VerificationKey, fetchedAt, attemptedAt time.Time) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return e.keys, e.fetchedAt, e.attemptedAt
}

// Keys returns the partner's published keys matching kid ("" for all). It
// refreshes the set when it was never fetched, is older than TTL, or lacks
// kid, subject to MinInterval.
func (j *JWKS) Keys(ctx context.Context, partnerID uuid.UUID, jwksURL, kid string) []partner.VerificationKey {
	e := j.entry(partnerID, jwksURL)
	keys, fetchedAt, attemptedAt := j.snapshot(e)
	now := j.Now()
	need := fetchedAt.IsZero() || now.Sub(fetchedAt) >= j.TTL || (kid != "" && !hasKid(keys, kid))
	if need && (attemptedAt.IsZero() || now.Sub(attemptedAt) >= j.MinInterval) {
		e.fetch.Lock()
		// Another request may have fetched while this one waited.
		if _, _, att := j.snapshot(e); att.Equal(attemptedAt) {
			j.refresh(ctx, e)
		}
		e.fetch.Unlock()
		keys, _, _ = j.snapshot(e)
	}
	if kid == "" {
		return keys
	}
	var out []partner.VerificationKey
	for _, k := range keys {
		if k.Kid == kid {
			out = append(out, k)
		}
	}
	return out
}

func hasKid(keys []partner.VerificationKey, kid string) bool {
	for _, k := range keys {
		if k.Kid == kid {
			return true
		}
	}
	return false
}

func (j *JWKS) refresh(ctx context.Context, e *jwksEntry) {
	j.mu.Lock()
	e.attemptedAt = j.Now()
	j.mu.Unlock()
	keys, err := j.fetch(ctx, e.url)
	if err != nil {
		if j.Log != nil {
			j.Log.WarnContext(ctx, "jwks fetch failed; keeping the last good set", "url", redactURL(e.url), "error", err.Error())
		}
		return
	}
	j.mu.Lock()
	e.keys, e.fetchedAt = keys, j.Now()
	j.mu.Unlock()
}

// redactURL drops the query, which may carry a token.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(invalid url)"
	}
	u.RawQuery, u.Fragment, u.User = "", "", nil
	return u.String()
}

// errJWKSTooLarge is returned for documents over MaxBytes.
var errJWKSTooLarge = errors.New("jwks document too large")

func (j *JWKS) fetch(ctx context.Context, u string) ([]partner.VerificationKey, error) {
	parsed, err := url.Parse(u)
	if err != nil || (parsed.Scheme != "https" && !(j.AllowHTTP && parsed.Scheme == "http")) {
		return nil, fmt.Errorf("jwks url must be https")
	}
	// The fetch serves every waiting request, so it must not die with the
	// first one's context; it has its own timeout instead.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), j.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(fctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	client := j.Client
	if client == nil {
		client = http.DefaultClient
	}
	res, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("jwks answered %d", res.StatusCode)
	}
	if res.ContentLength > j.MaxBytes {
		return nil, errJWKSTooLarge
	}
	b, err := io.ReadAll(io.LimitReader(res.Body, j.MaxBytes+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > j.MaxBytes {
		return nil, errJWKSTooLarge
	}
	return ParseJWKS(b)
}

// maxJWKSKeys bounds the keys taken from one document.
const maxJWKSKeys = 100

type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	Crv string `json:"crv"`
	N   string `json:"n"`
	E   string `json:"e"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// ParseJWKS parses a JWK Set into verification keys. Each key gets exactly
// one algorithm: its `alg`, or the only one Perks accepts for its type
// (RSA: RS256, EC P-256: ES256, OKP Ed25519: EdDSA). Keys for encryption,
// symmetric keys and unsupported types are skipped; a document without a
// usable key is an error, so it never replaces a good set.
func ParseJWKS(b []byte) ([]partner.VerificationKey, error) {
	var doc struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("parse jwks: %w", err)
	}
	var out []partner.VerificationKey
	for _, k := range doc.Keys {
		if len(out) == maxJWKSKeys {
			break
		}
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		vk, ok := k.verificationKey()
		if ok {
			out = append(out, vk)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("jwks has no usable signing key")
	}
	return out, nil
}

func b64(s string) ([]byte, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	return b, err == nil && len(b) > 0
}

func (k jwk) verificationKey() (partner.VerificationKey, bool) {
	vk := partner.VerificationKey{Kid: k.Kid}
	want := func(alg string) bool {
		vk.Algorithm = alg
		return k.Alg == "" || k.Alg == alg
	}
	switch k.Kty {
	case "RSA":
		n, ok1 := b64(k.N)
		e, ok2 := b64(k.E)
		if !ok1 || !ok2 || len(e) > 4 || !want(partner.AlgRS256) {
			return vk, false
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		if pub.N.BitLen() < 2048 || pub.E < 3 {
			return vk, false
		}
		vk.Key = pub
	case "EC":
		x, ok1 := b64(k.X)
		y, ok2 := b64(k.Y)
		if k.Crv != "P-256" || !ok1 || !ok2 || len(x) != 32 || len(y) != 32 || !want(partner.AlgES256) {
			return vk, false
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return vk, false
		}
		vk.Key = pub
	case "OKP":
		x, ok := b64(k.X)
		if k.Crv != "Ed25519" || !ok || len(x) != ed25519.PublicKeySize || !want(partner.AlgEdDSA) {
			return vk, false
		}
		vk.Key = ed25519.PublicKey(x)
	default:
		return vk, false
	}
	return vk, true
}
