package partner

import (
	"context"
	"encoding/hex"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// AuthLookup is the read side of authentication: the lookups every signed
// request and every consumer token makes, answered from Service.Cache when
// it is live (see Cache) and from the database otherwise. Only the
// authenticators use it: a page or a write that reads a partner to act on
// it reads the database (Service's own methods), never the cache.
//
// Answers are copies: a caller may change the Partner it gets.
type AuthLookup struct{ s *Service }

// Auth returns the service's authentication lookups.
func (s *Service) Auth() AuthLookup { return AuthLookup{s: s} }

func copyPartner(p *Partner) *Partner {
	c := *p
	return &c
}

type partnerWithSecrets struct {
	p       *Partner
	secrets []SharedSecret
}

// BySlugWithSecrets is Service.BySlugWithSecrets, cached.
func (l AuthLookup) BySlugWithSecrets(ctx context.Context, db bun.IDB, slug, kind string) (*Partner, []SharedSecret, error) {
	v, err := l.s.Cache.get("slugsecrets\x00"+kind+"\x00"+slug, func() (any, error) {
		p, s, err := l.s.BySlugWithSecrets(ctx, db, slug, kind)
		if err != nil {
			return nil, err
		}
		return partnerWithSecrets{p: p, secrets: s}, nil
	})
	if err != nil {
		return nil, nil, err
	}
	ps := v.(partnerWithSecrets)
	return copyPartner(ps.p), l.withTouches(ps.secrets), nil
}

// EnabledSecrets is Service.EnabledSecrets, cached.
func (l AuthLookup) EnabledSecrets(ctx context.Context, db bun.IDB, partnerID uuid.UUID, kind string) ([]SharedSecret, error) {
	v, err := l.s.Cache.get("secrets\x00"+kind+"\x00"+partnerID.String(), func() (any, error) {
		return l.s.EnabledSecrets(ctx, db, partnerID, kind)
	})
	if err != nil {
		return nil, err
	}
	return l.withTouches(v.([]SharedSecret)), nil
}

// withTouches copies secrets with their last use as this process last
// recorded it (a cached row keeps the time it was read).
func (l AuthLookup) withTouches(secrets []SharedSecret) []SharedSecret {
	out := make([]SharedSecret, len(secrets))
	copy(out, secrets)
	for i := range out {
		if t, ok := l.s.touched.Load(out[i].CredentialID); ok {
			tt := t.(time.Time)
			if out[i].LastUsedAt == nil || tt.After(*out[i].LastUsedAt) {
				out[i].LastUsedAt = &tt
			}
		}
	}
	return out
}

// ByID is Service.ByID, cached.
func (l AuthLookup) ByID(ctx context.Context, db bun.IDB, id uuid.UUID) (*Partner, error) {
	return l.partner("id\x00"+id.String(), func() (*Partner, error) { return l.s.ByID(ctx, db, id) })
}

// BySlug is Service.BySlug, cached.
func (l AuthLookup) BySlug(ctx context.Context, db bun.IDB, slug string) (*Partner, error) {
	return l.partner("slug\x00"+slug, func() (*Partner, error) { return l.s.BySlug(ctx, db, slug) })
}

// ByIssuer is Service.ByIssuer, cached.
func (l AuthLookup) ByIssuer(ctx context.Context, db bun.IDB, iss string) (*Partner, error) {
	return l.partner("issuer\x00"+iss, func() (*Partner, error) { return l.s.ByIssuer(ctx, db, iss) })
}

func (l AuthLookup) partner(key string, load func() (*Partner, error)) (*Partner, error) {
	v, err := l.s.Cache.get(key, func() (any, error) { return load() })
	if err != nil {
		return nil, err
	}
	return copyPartner(v.(*Partner)), nil
}

// EnabledConsumerKeys is Service.EnabledConsumerKeys, cached.
func (l AuthLookup) EnabledConsumerKeys(ctx context.Context, db bun.IDB, partnerID uuid.UUID, kid string) ([]VerificationKey, error) {
	v, err := l.s.Cache.get("consumerkeys\x00"+partnerID.String()+"\x00"+kid, func() (any, error) {
		return l.s.EnabledConsumerKeys(ctx, db, partnerID, kid)
	})
	if err != nil {
		return nil, err
	}
	keys := v.([]VerificationKey)
	return append([]VerificationKey(nil), keys...), nil
}

// PartnersWithKid is Service.PartnersWithKid, cached.
func (l AuthLookup) PartnersWithKid(ctx context.Context, db bun.IDB, kid string) ([]uuid.UUID, error) {
	v, err := l.s.Cache.get("kid\x00"+kid, func() (any, error) { return l.s.PartnersWithKid(ctx, db, kid) })
	if err != nil {
		return nil, err
	}
	return append([]uuid.UUID(nil), v.([]uuid.UUID)...), nil
}

// Ed25519ByAPIKey is Service.Ed25519ByAPIKey, cached (keyed by the key's
// hash, as it is stored).
func (l AuthLookup) Ed25519ByAPIKey(ctx context.Context, db bun.IDB, apiKey string) (*Ed25519Key, error) {
	v, err := l.s.Cache.get("ed25519\x00"+hex.EncodeToString(HashAPIKey(apiKey)), func() (any, error) {
		return l.s.Ed25519ByAPIKey(ctx, db, apiKey)
	})
	if err != nil {
		return nil, err
	}
	k := *v.(*Ed25519Key)
	return &k, nil
}

// TouchedRecently reports whether this process recorded the credential's
// use within TouchInterval of now, so that a cached credential (whose
// LastUsedAt is as old as the cache entry) is not touched on every request.
func (l AuthLookup) TouchedRecently(credentialID uuid.UUID, now time.Time) bool {
	t, ok := l.s.touched.Load(credentialID)
	if !ok {
		return false
	}
	tt := t.(time.Time)
	return !NeedsTouch(&tt, now)
}

// Epoch is the cache's Epoch: what a value derived from these lookups must
// still match to be used (see Cache.Epoch).
func (l AuthLookup) Epoch() (gen uint64, serving bool) { return l.s.Cache.Epoch() }
