package partner

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
)

// keyCache keeps parsed consumer key material so a token verification does
// not parse a PEM or open a sealed secret on every request. Entries are keyed
// by the key's id and a digest of its stored material, so replaced material
// is never served from the cache; whether a key is enabled is read from the
// database on every request, so disabling a key takes effect at once.
type keyCache struct {
	mu sync.Mutex
	m  map[keyCacheKey]any
}

type keyCacheKey struct {
	id     uuid.UUID
	digest [sha256.Size]byte
}

// maxCachedKeys bounds the cache; when full it starts over (cheap, and a
// deployment rarely has more live keys than this).
const maxCachedKeys = 4096

func (c *keyCache) get(k keyCacheKey) (any, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[k]
	return v, ok
}

func (c *keyCache) put(k keyCacheKey, v any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCachedKeys {
		c.m = make(map[keyCacheKey]any)
	}
	c.m[k] = v
}

func (s *Service) verificationKey(r *ConsumerKey) (VerificationKey, error) {
	vk := VerificationKey{ID: r.ID, Kid: r.Kid, Algorithm: r.Algorithm, NoExpMaxAge: r.NoExpMaxAge()}
	h := sha256.New()
	h.Write([]byte(r.Algorithm))
	h.Write([]byte{0})
	if r.PublicKeyPEM != nil {
		h.Write([]byte(*r.PublicKeyPEM))
	}
	h.Write([]byte{0})
	h.Write(r.SecretSealed)
	ck := keyCacheKey{id: r.ID}
	copy(ck.digest[:], h.Sum(nil))
	if v, ok := s.keyCache.get(ck); ok {
		vk.Key = v
		return vk, nil
	}
	if r.Algorithm == AlgHS256 {
		secret, err := s.Keys.Open(r.SecretSealed, consumerKeyAAD(r.PartnerID, r.ID))
		if err != nil {
			return vk, fmt.Errorf("open consumer key %s: %w", r.Kid, err)
		}
		vk.Key = secret
	} else {
		if r.PublicKeyPEM == nil {
			return vk, fmt.Errorf("consumer key %s has no public key", r.Kid)
		}
		pub, err := ParsePublicKeyPEM(r.Algorithm, *r.PublicKeyPEM)
		if err != nil {
			return vk, fmt.Errorf("parse consumer key %s: %w", r.Kid, err)
		}
		vk.Key = pub
	}
	s.keyCache.put(ck, vk.Key)
	return vk, nil
}

// ListConsumerKeys lists a partner's consumer keys (never HS256 secrets).
func (s *Service) ListConsumerKeys(ctx context.Context, db bun.IDB, partnerID uuid.UUID) ([]ConsumerKey, error) {
	var rows []ConsumerKey
	err := db.NewSelect().Model(&rows).ExcludeColumn("secret_sealed").
		Where("partner_id = ?", partnerID).OrderExpr("created_at, kid").Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("list consumer keys: %w", err)
	}
	return rows, nil
}

// SetConsumerKeyEnabled switches a consumer key on or off by kid. A
// disabled key stops verifying with the next request: this process
// bypasses its cache from the write, other replicas empty theirs (and
// forget the tokens they verified) when the change's notification arrives
// (see Cache).
func (s *Service) SetConsumerKeyEnabled(ctx context.Context, db bun.IDB, partnerID uuid.UUID, kid string, enabled bool) error {
	s.Changed()
	res, err := db.NewUpdate().Model((*ConsumerKey)(nil)).
		Set("enabled = ?, updated_at = now()", enabled).
		Where("partner_id = ? AND kid = ?", partnerID, kid).Exec(ctx)
	if err != nil {
		return fmt.Errorf("set consumer key %s enabled=%v: %w", kid, enabled, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return apperr.Field(apperr.CodeNotFound, "kid", "no consumer key %q for this partner", kid)
	}
	return nil
}

// maxNoExpAge bounds how old a token without exp may be (a year; the
// partner's maximum token lifetime bounds it further at verification).
const maxNoExpAge = 366 * 24 * time.Hour

// NoExpMaxAge is how old (from iat) a token of this key without exp may
// be; 0 when tokens must carry exp.
func (k *ConsumerKey) NoExpMaxAge() time.Duration {
	if k.NoExpMaxAgeSeconds == nil {
		return 0
	}
	return time.Duration(*k.NoExpMaxAgeSeconds) * time.Second
}

func (k *ConsumerKey) setNoExpMaxAge(d time.Duration) error {
	switch {
	case d == 0:
		k.NoExpMaxAgeSeconds = nil
	case d < time.Second || d > maxNoExpAge:
		return apperr.Field(apperr.CodeInvalidField, "maxAge", "the maximum age of tokens without exp must be between 1s and %s", maxNoExpAge)
	default:
		s := int(d / time.Second)
		k.NoExpMaxAgeSeconds = &s
	}
	return nil
}

// ConsumerKeyChanges are the settings of a key that change without
// replacing its material; nil fields stay as they are.
type ConsumerKeyChanges struct {
	Description *string
	// NoExpMaxAge: 0 requires exp again; > 0 accepts tokens without exp
	// whose iat is at most this old.
	NoExpMaxAge *time.Duration
}

// UpdateConsumerKey changes a key's description or its no-exp allowance.
func (s *Service) UpdateConsumerKey(ctx context.Context, db bun.IDB, partnerID uuid.UUID, kid string, ch ConsumerKeyChanges) (*ConsumerKey, error) {
	s.Changed()
	k := new(ConsumerKey)
	q := db.NewUpdate().Model(k).Set("updated_at = now()").
		Where("partner_id = ? AND kid = ?", partnerID, kid).Returning("*")
	if ch.Description != nil {
		q = q.Set("description = ?", *ch.Description)
	}
	if ch.NoExpMaxAge != nil {
		if err := k.setNoExpMaxAge(*ch.NoExpMaxAge); err != nil {
			return nil, err
		}
		q = q.Set("no_exp_max_age_seconds = ?", k.NoExpMaxAgeSeconds)
	}
	if err := q.Scan(ctx); errors.Is(err, sql.ErrNoRows) {
		return nil, apperr.Field(apperr.CodeNotFound, "kid", "no consumer key %q for this partner", kid)
	} else if err != nil {
		return nil, fmt.Errorf("update consumer key %s: %w", kid, err)
	}
	return k, nil
}

// KidUsedByOtherPartner reports whether a partner other than partnerID has
// an enabled key with kid. Such a kid no longer resolves a token's partner
// by itself (see PartnersWithKid), which `perks key add` warns about.
func (s *Service) KidUsedByOtherPartner(ctx context.Context, db bun.IDB, partnerID uuid.UUID, kid string) (bool, error) {
	n, err := db.NewSelect().Model((*ConsumerKey)(nil)).
		Where("kid = ? AND enabled AND partner_id <> ?", kid, partnerID).Count(ctx)
	if err != nil {
		return false, fmt.Errorf("kid used by other partners: %w", err)
	}
	return n > 0, nil
}
