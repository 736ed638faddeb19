package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/partner"
	"github.com/perkshq/perks/internal/user"
)

// Consumer token header names. X-SaaSquatch-User-Token (seed 003) is an
// alias of Authorization: Bearer.
const (
	HeaderAuthorization = "Authorization"
	HeaderSaaSquatch    = "X-SaaSquatch-User-Token"
)

// maxTokenBytes bounds the token we are willing to parse.
const maxTokenBytes = 8 << 10

// ConsumerPrincipal is an authenticated end user.
type ConsumerPrincipal struct {
	Partner *partner.Partner
	User    *user.User
	// IssuedAt is the token's iat or, when absent, the earliest instant it
	// can have been issued (exp minus the partner's maximum lifetime), which
	// is what logout-everywhere compares with.
	IssuedAt time.Time
	Created  bool
}

// ConsumerAuthenticator verifies partner-minted consumer JWTs.
type ConsumerAuthenticator struct {
	DB       *bun.DB
	Partners *partner.Service
	Users    *user.Service
	Leeway   time.Duration
	Now      func() time.Time
	// JWKS serves the keys of partners that publish a JWKS URL; nil
	// ignores JWKS URLs.
	JWKS *JWKS

	tokens tokenCache
}

// tokenUser is seed 003's `user` claim.
type tokenUser struct {
	ID        string  `json:"id"`
	AccountID string  `json:"accountId"`
	FirstName *string `json:"firstName"`
	LastName  *string `json:"lastName"`
	Email     *string `json:"email"`
	Locale    *string `json:"locale"`
}

type consumerClaims struct {
	jwt.RegisteredClaims
	Email       *string    `json:"email"`
	DisplayName *string    `json:"displayName"`
	Name        *string    `json:"name"`
	GivenName   *string    `json:"given_name"`
	FamilyName  *string    `json:"family_name"`
	Locale      *string    `json:"locale"`
	CountryCode *string    `json:"countryCode"`
	User        *tokenUser `json:"user"`
}

func (c *consumerClaims) subject() string {
	if c.Subject != "" {
		return c.Subject
	}
	if c.User != nil {
		return c.User.ID
	}
	return ""
}

func (c *consumerClaims) profile() user.Profile {
	p := user.Profile{Email: c.Email, DisplayName: c.DisplayName, FirstName: c.GivenName, LastName: c.FamilyName, Locale: c.Locale, CountryCode: c.CountryCode}
	if p.DisplayName == nil {
		p.DisplayName = c.Name
	}
	if u := c.User; u != nil {
		first := func(a, b *string) *string {
			if a != nil {
				return a
			}
			return b
		}
		p.Email = first(p.Email, u.Email)
		p.FirstName = first(p.FirstName, u.FirstName)
		p.LastName = first(p.LastName, u.LastName)
		p.Locale = first(p.Locale, u.Locale)
		if p.DisplayName == nil && (u.FirstName != nil || u.LastName != nil) {
			var parts []string
			for _, s := range []*string{u.FirstName, u.LastName} {
				if s != nil && *s != "" {
					parts = append(parts, *s)
				}
			}
			name := strings.Join(parts, " ")
			p.DisplayName = &name
		}
	}
	return p
}

// TokenFromHeaders extracts the consumer token, or "" when none was sent.
func TokenFromHeaders(h Headers) (string, error) {
	if v := h.Get(HeaderAuthorization); v != "" {
		scheme, tok, ok := strings.Cut(v, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
			return "", apperr.New(apperr.CodeUnauthenticated, "the Authorization header must be `Bearer <token>`")
		}
		return strings.TrimSpace(tok), nil
	}
	return strings.TrimSpace(h.Get(HeaderSaaSquatch)), nil
}

// Reasons a consumer token is refused. They travel as `reason` next to the
// code (TOKEN_INVALID, or TOKEN_EXPIRED for expired and max_age_exceeded),
// so a partner's developer sees which check failed; the codes stay what
// they were. Like codes, reasons never change meaning. No message names a
// key, a secret or another partner.
const (
	ReasonMalformed           = "malformed"
	ReasonUnknownIssuer       = "unknown_issuer"
	ReasonUnknownPartner      = "unknown_partner"
	ReasonPartnerUndetermined = "partner_undetermined"
	ReasonUnknownKid          = "unknown_kid"
	ReasonUnsupportedAlg      = "unsupported_alg"
	ReasonNoKey               = "no_key"
	ReasonBadSignature        = "bad_signature"
	ReasonMissingExp          = "missing_exp"
	ReasonMissingIat          = "missing_iat"
	ReasonExpired             = "expired"
	ReasonMaxAgeExceeded      = "max_age_exceeded"
	ReasonNotYetValid         = "not_yet_valid"
	ReasonIssuedInFuture      = "issued_in_future"
	ReasonAudience            = "audience"
	ReasonLifetime            = "lifetime_too_long"
	ReasonNoSubject           = "no_subject"
)

// tokenError is a consumer token refusal with its reason.
func tokenError(code apperr.Code, reason, format string, args ...any) *apperr.Error {
	e := apperr.New(code, format, args...)
	e.Reason = reason
	return e
}

func tokenInvalid(reason, format string, args ...any) *apperr.Error {
	return tokenError(apperr.CodeTokenInvalid, reason, format, args...)
}

// errPartnerUndetermined answers a token that names no partner Perks can
// find by itself: no known iss, no X-Partner-Slug, and a kid that is absent
// or registered by more than one partner.
var errPartnerUndetermined = tokenInvalid(ReasonPartnerUndetermined,
	"no partner could be determined for this token: send `iss` (the partner's issuer) or the X-Partner-Slug header")

// consumerAlgs are the algorithms consumer keys verify.
var consumerAlgs = []string{partner.AlgRS256, partner.AlgES256, partner.AlgEdDSA, partner.AlgHS256}

// verifyToken runs every check of Authenticate that does not touch the
// user: format, algorithm, partner, key, signature, claims, the partner's
// access switch and the subject. With only set (the portal's token tester)
// the token is judged as that partner's: its iss must be the partner's
// issuer or absent, and the kid is looked up among its keys only.
func (a *ConsumerAuthenticator) verifyToken(ctx context.Context, token, slugHint string, only *partner.Partner) (*partner.Partner, *consumerClaims, time.Time, error) {
	if token == "" {
		return nil, nil, time.Time{}, apperr.New(apperr.CodeUnauthenticated, "a consumer token is required (Authorization: Bearer <token>)")
	}
	if len(token) > maxTokenBytes {
		return nil, nil, time.Time{}, tokenInvalid(ReasonMalformed, "the token is longer than %d bytes", maxTokenBytes)
	}
	// The epoch is read before any lookup: an entry stored below is stale
	// if anything it was judged on changed meanwhile (see tokenCache).
	var (
		cacheKey  [sha256.Size]byte
		epoch     uint64
		cacheable bool
	)
	if only == nil {
		if epoch, cacheable = a.Partners.Auth().Epoch(); cacheable {
			cacheKey = tokenKey(token, slugHint)
			if v := a.tokens.get(cacheKey, epoch); v != nil {
				return a.reuse(cacheKey, v)
			}
		}
	}
	unverified := &consumerClaims{}
	parsed, _, err := jwt.NewParser().ParseUnverified(token, unverified)
	if err != nil {
		return nil, nil, time.Time{}, tokenInvalid(ReasonMalformed, "the token is not a well-formed JWT (three base64url parts, JSON header and claims)")
	}
	kid, kidOK := parsed.Header["kid"].(string)
	alg, _ := parsed.Header["alg"].(string)
	if _, present := parsed.Header["kid"]; present && (!kidOK || kid == "" || len(kid) > 200) {
		// A malformed kid is not "no kid": refuse rather than try every key.
		return nil, nil, time.Time{}, tokenInvalid(ReasonMalformed, "the token's kid header must be a string of 1 to 200 characters")
	}
	if !slices.Contains(consumerAlgs, alg) {
		return nil, nil, time.Time{}, tokenInvalid(ReasonUnsupportedAlg, "the token's alg must be one of %s", strings.Join(consumerAlgs, ", "))
	}

	var p *partner.Partner
	if only != nil {
		p = only
		if unverified.Issuer != "" && (p.Issuer == nil || *p.Issuer != unverified.Issuer) {
			return nil, nil, time.Time{}, tokenInvalid(ReasonUnknownIssuer, "the token's iss is not this partner's issuer (leave it out, or set the partner's issuer)")
		}
	} else {
		p, err = a.resolvePartner(ctx, unverified.Issuer, kid, slugHint)
	}
	if err != nil {
		return nil, nil, time.Time{}, err
	}
	keys, err := a.Partners.Auth().EnabledConsumerKeys(ctx, a.DB, p.ID, kid)
	if err != nil {
		return nil, nil, time.Time{}, err
	}
	if p.JWKSURL != nil && !p.JWKSDisabled && a.JWKS != nil && !(kid != "" && len(keys) > 0) {
		// Published keys count as the partner's keys. A kid registered in
		// Perks does not trigger a fetch; an unknown one refreshes the set
		// (at most once per minimum interval).
		keys = append(keys, a.JWKS.Keys(ctx, p.ID, *p.JWKSURL, kid)...)
	}
	if len(keys) == 0 && kid != "" {
		return nil, nil, time.Time{}, tokenInvalid(ReasonUnknownKid, "the partner has no enabled key with the token's kid")
	}
	claims, key, err := a.verify(token, p, alg, kid, keys)
	if err != nil {
		return nil, nil, time.Time{}, err
	}
	if err := p.CheckEnabled(partner.AudienceConsumer); err != nil {
		return nil, nil, time.Time{}, err
	}
	if claims.subject() == "" {
		return nil, nil, time.Time{}, tokenInvalid(ReasonNoSubject, "the token has no subject (sub or user.id)")
	}
	// A token without exp verified only with its iat (see verify).
	var issuedAt time.Time
	if claims.IssuedAt != nil {
		issuedAt = claims.IssuedAt.Time
	} else {
		issuedAt = claims.ExpiresAt.Add(-p.MaxTokenLifetime())
	}
	if cacheable && key.ID != uuid.Nil {
		// Only keys stored in Perks have an id; a published (JWKS) key's
		// removal notifies nobody.
		stored := *p
		a.tokens.put(cacheKey, &verifiedToken{epoch: epoch, partner: &stored, claims: claims, issuedAt: issuedAt, noExpMaxAge: key.NoExpMaxAge})
	}
	return p, claims, issuedAt, nil
}

// reuse answers a token whose signature verified earlier in the same
// epoch: its time claims are judged again, as verifyToken judges them. The
// partner's access switch was on when the token was stored, and switching
// it changes the epoch.
func (a *ConsumerAuthenticator) reuse(key [sha256.Size]byte, v *verifiedToken) (*partner.Partner, *consumerClaims, time.Time, error) {
	err := jwt.NewValidator(a.claimOptions(v.partner, v.noExpMaxAge)...).Validate(v.claims)
	if err != nil {
		err = claimError(err, v.claims)
	} else {
		err = a.checkTimes(v.noExpMaxAge, v.partner, v.claims)
	}
	if err != nil {
		// Expired stays expired; a token not valid yet is verified in full
		// when it is.
		a.tokens.forget(key)
		return nil, nil, time.Time{}, err
	}
	p := *v.partner
	return &p, v.claims, v.issuedAt, nil
}

// Authenticate verifies token and returns the user it names, creating the
// user on first sight. slugHint is the X-Partner-Slug header, which names
// the partner of a token without a known iss (see resolvePartner).
func (a *ConsumerAuthenticator) Authenticate(ctx context.Context, token, slugHint string) (*ConsumerPrincipal, error) {
	p, claims, issuedAt, err := a.verifyToken(ctx, token, slugHint, nil)
	if err != nil {
		return nil, err
	}
	sub := claims.subject()

	// FromToken also refuses tokens issued before a logout, an
	// anonymisation or an erasure (TOKEN_REVOKED).
	u, created, err := a.Users.FromToken(ctx, a.DB, p.ID, sub, issuedAt, claims.profile())
	if err != nil {
		return nil, err
	}
	return &ConsumerPrincipal{Partner: p, User: u, IssuedAt: issuedAt, Created: created}, nil
}

// resolvePartner finds the partner whose keys may verify the token, from
// the most specific hint: the token's iss (a registered issuer), else the
// X-Partner-Slug header, else a kid that exactly one partner registered.
// Only that partner's keys are then tried, so another partner registering
// the same kid (globex adding seed 002's example `primary`) cannot take over
// the tokens of a partner that says who it is. A kid shared by several
// partners resolves nothing by itself.
func (a *ConsumerAuthenticator) resolvePartner(ctx context.Context, iss, kid, slug string) (*partner.Partner, error) {
	if iss != "" {
		p, err := a.Partners.Auth().ByIssuer(ctx, a.DB, iss)
		if apperr.Is(err, apperr.CodeNotFound) {
			// A partner that configured an issuer only accepts tokens that
			// carry it or none; an iss nobody configured verifies nowhere.
			return nil, tokenInvalid(ReasonUnknownIssuer, "no partner has the token's iss as its issuer (check `iss`, or leave it out)")
		}
		return p, err
	}
	if slug != "" {
		p, err := a.Partners.Auth().BySlug(ctx, a.DB, slug)
		if apperr.Is(err, apperr.CodeNotFound) {
			return nil, tokenInvalid(ReasonUnknownPartner, "X-Partner-Slug names no partner")
		}
		return p, err
	}
	if kid == "" {
		return nil, errPartnerUndetermined
	}
	ids, err := a.Partners.Auth().PartnersWithKid(ctx, a.DB, kid)
	if err != nil {
		return nil, err
	}
	switch len(ids) {
	case 0:
		return nil, tokenInvalid(ReasonUnknownKid, "no partner registered a key with the token's kid: register it (`perks key add`), or send `iss` or X-Partner-Slug if the key is published at a JWKS URL")
	case 1:
		return a.Partners.Auth().ByID(ctx, a.DB, ids[0])
	}
	return nil, errPartnerUndetermined
}

// verify checks the signature against each candidate key of the token's
// algorithm, then the claims, and returns the key that verified. Each key
// allows exactly its own algorithm, so `none` and RS256-to-HS256 confusion
// cannot verify. Claims are only judged (and reported) once a key verified
// the signature.
func (a *ConsumerAuthenticator) verify(token string, p *partner.Partner, alg, kid string, keys []partner.VerificationKey) (*consumerClaims, partner.VerificationKey, error) {
	tried := false
	for _, k := range keys {
		if k.Algorithm != alg {
			continue
		}
		tried = true
		opts := append(a.claimOptions(p, k.NoExpMaxAge), jwt.WithValidMethods([]string{k.Algorithm}))
		claims := &consumerClaims{}
		_, err := jwt.NewParser(opts...).ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return k.Key, nil })
		switch {
		case err == nil:
			return claims, k, a.checkTimes(k.NoExpMaxAge, p, claims)
		case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
			continue // another key of the partner may verify it
		case errors.Is(err, jwt.ErrTokenMalformed):
			return nil, k, tokenInvalid(ReasonMalformed, "the token's claims do not parse (exp, iat and nbf are NumericDate seconds)")
		}
		// The signature verified: a claim failed, and no other key would
		// do better.
		return nil, k, claimError(err, claims)
	}
	var none partner.VerificationKey
	if !tried {
		if kid != "" {
			return nil, none, tokenInvalid(ReasonNoKey, "the partner's key with the token's kid is not a %s key", alg)
		}
		return nil, none, tokenInvalid(ReasonNoKey, "the partner has no enabled key for %s", alg)
	}
	return nil, none, tokenInvalid(ReasonBadSignature, "the signature does not verify with the partner's keys (wrong key, or the token was altered)")
}

// claimOptions judge a token's registered claims for partner p and a key
// whose maximum age for tokens without exp is noExpMaxAge (0: exp is
// required). A cached token is judged again with the same options.
func (a *ConsumerAuthenticator) claimOptions(p *partner.Partner, noExpMaxAge time.Duration) []jwt.ParserOption {
	opts := []jwt.ParserOption{
		jwt.WithLeeway(a.Leeway),
		jwt.WithTimeFunc(a.Now),
		jwt.WithIssuedAt(),
	}
	if noExpMaxAge == 0 {
		opts = append(opts, jwt.WithExpirationRequired())
	}
	if p.Audience != "" {
		opts = append(opts, jwt.WithAudience(p.Audience))
	}
	return opts
}

// checkTimes runs the partner's own checks after the registered claims
// validated: the age of a token without exp, or the lifetime of one with.
func (a *ConsumerAuthenticator) checkTimes(noExpMaxAge time.Duration, p *partner.Partner, c *consumerClaims) error {
	if c.ExpiresAt == nil {
		return a.checkAge(noExpMaxAge, p, c)
	}
	return a.checkLifetime(p, c)
}

// claimError names the claim check that failed after the signature verified.
func claimError(err error, c *consumerClaims) error {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return tokenError(apperr.CodeTokenExpired, ReasonExpired, "the token has expired")
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing) && c.ExpiresAt == nil:
		return tokenInvalid(ReasonMissingExp, "the token has no exp: this partner's key requires one")
	case errors.Is(err, jwt.ErrTokenInvalidAudience), errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return tokenInvalid(ReasonAudience, "the token's aud does not name this partner's audience")
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return tokenInvalid(ReasonNotYetValid, "the token is not valid yet (nbf is in the future)")
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return tokenInvalid(ReasonIssuedInFuture, "the token's iat is in the future (check the signing host's clock)")
	}
	return tokenInvalid(ReasonMalformed, "the token's claims do not validate")
}

// checkAge bounds a token without exp, which only a key with a maximum age
// verifies: iat is required and at most that old (and never older than the
// partner's maximum token lifetime).
func (a *ConsumerAuthenticator) checkAge(noExpMaxAge time.Duration, p *partner.Partner, c *consumerClaims) error {
	if c.IssuedAt == nil {
		return tokenInvalid(ReasonMissingIat, "a token without exp must carry iat")
	}
	maxAge := min(noExpMaxAge, p.MaxTokenLifetime())
	if a.Now().Sub(c.IssuedAt.Time) > maxAge+a.Leeway {
		return tokenError(apperr.CodeTokenExpired, ReasonMaxAgeExceeded, "the token has no exp and was issued more than %s ago", maxAge)
	}
	return nil
}

func (a *ConsumerAuthenticator) checkLifetime(p *partner.Partner, c *consumerClaims) error {
	from := a.Now()
	if c.IssuedAt != nil {
		from = c.IssuedAt.Time
	}
	if c.ExpiresAt.Sub(from) > p.MaxTokenLifetime()+a.Leeway {
		return tokenInvalid(ReasonLifetime, "the token lives longer than this partner allows (%s)", fmt.Sprint(p.MaxTokenLifetime()))
	}
	return nil
}
