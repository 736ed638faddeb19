package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
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

var errTokenInvalid = apperr.New(apperr.CodeTokenInvalid, "the token does not verify")

// Authenticate verifies token and returns the user it names, creating the
// user on first sight. slugHint is the X-Partner-Slug header, the last resort
// for finding the partner of a token without a known iss or kid.
func (a *ConsumerAuthenticator) Authenticate(ctx context.Context, token, slugHint string) (*ConsumerPrincipal, error) {
	if token == "" {
		return nil, apperr.New(apperr.CodeUnauthenticated, "a consumer token is required (Authorization: Bearer <token>)")
	}
	if len(token) > maxTokenBytes {
		return nil, errTokenInvalid
	}
	unverified := &consumerClaims{}
	parsed, _, err := jwt.NewParser().ParseUnverified(token, unverified)
	if err != nil {
		return nil, errTokenInvalid
	}
	kid, kidOK := parsed.Header["kid"].(string)
	alg, _ := parsed.Header["alg"].(string)
	if _, present := parsed.Header["kid"]; present && (!kidOK || kid == "" || len(kid) > 200) {
		// A malformed kid is not "no kid": refuse rather than try every key.
		return nil, errTokenInvalid
	}

	p, err := a.resolvePartner(ctx, unverified.Issuer, kid, slugHint)
	if err != nil {
		return nil, err
	}
	keys, err := a.Partners.EnabledConsumerKeys(ctx, a.DB, p.ID, kid)
	if err != nil {
		return nil, err
	}
	if p.JWKSURL != nil && a.JWKS != nil && !(kid != "" && len(keys) > 0) {
		// Published keys count as the partner's keys. A kid registered in
		// Perks does not trigger a fetch; an unknown one refreshes the set
		// (at most once per minimum interval).
		keys = append(keys, a.JWKS.Keys(ctx, p.ID, *p.JWKSURL, kid)...)
	}
	claims, err := a.verify(token, p, alg, keys)
	if err != nil {
		return nil, err
	}
	if !p.APIEnabled {
		return nil, apperr.New(apperr.CodePartnerDisabled, "this partner's program is switched off")
	}
	sub := claims.subject()
	if sub == "" {
		return nil, apperr.New(apperr.CodeTokenInvalid, "the token has no subject (sub or user.id)")
	}
	issuedAt := claims.ExpiresAt.Add(-p.MaxTokenLifetime())
	if claims.IssuedAt != nil {
		issuedAt = claims.IssuedAt.Time
	}

	var principal *ConsumerPrincipal
	err = a.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		// FromTokenTx also refuses tokens issued before a logout, an
		// anonymisation or an erasure (TOKEN_REVOKED).
		u, created, err := a.Users.FromTokenTx(ctx, tx, p.ID, sub, issuedAt, claims.profile())
		if err != nil {
			return err
		}
		principal = &ConsumerPrincipal{Partner: p, User: u, IssuedAt: issuedAt, Created: created}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return principal, nil
}

func (a *ConsumerAuthenticator) resolvePartner(ctx context.Context, iss, kid, slug string) (*partner.Partner, error) {
	if iss != "" {
		p, err := a.Partners.ByIssuer(ctx, a.DB, iss)
		if err == nil {
			return p, nil
		}
		if !apperr.Is(err, apperr.CodeNotFound) {
			return nil, err
		}
	}
	var p *partner.Partner
	if kid != "" {
		ids, err := a.Partners.PartnersWithKid(ctx, a.DB, kid)
		if err != nil {
			return nil, err
		}
		if len(ids) == 1 {
			if p, err = a.Partners.ByID(ctx, a.DB, ids[0]); err != nil {
				return nil, err
			}
		}
	}
	if p == nil && slug != "" {
		var err error
		p, err = a.Partners.BySlug(ctx, a.DB, slug)
		if apperr.Is(err, apperr.CodeNotFound) {
			return nil, errTokenInvalid
		}
		if err != nil {
			return nil, err
		}
	}
	if p == nil {
		return nil, errTokenInvalid
	}
	// A partner that configured an issuer only accepts tokens that either
	// carry it or carry none.
	if iss != "" && (p.Issuer == nil || *p.Issuer != iss) {
		return nil, errTokenInvalid
	}
	return p, nil
}

// verify checks the signature against each candidate key of the token's
// algorithm. Each key allows exactly its own algorithm, so `none` and
// RS256-to-HS256 confusion cannot verify.
func (a *ConsumerAuthenticator) verify(token string, p *partner.Partner, alg string, keys []partner.VerificationKey) (*consumerClaims, error) {
	var lastErr error = errTokenInvalid
	for _, k := range keys {
		if k.Algorithm != alg {
			continue
		}
		opts := []jwt.ParserOption{
			jwt.WithValidMethods([]string{k.Algorithm}),
			jwt.WithExpirationRequired(),
			jwt.WithLeeway(a.Leeway),
			jwt.WithTimeFunc(a.Now),
			jwt.WithIssuedAt(),
		}
		if p.Audience != "" {
			opts = append(opts, jwt.WithAudience(p.Audience))
		}
		claims := &consumerClaims{}
		_, err := jwt.NewParser(opts...).ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return k.Key, nil })
		if err == nil {
			return claims, a.checkLifetime(p, claims)
		}
		if errors.Is(err, jwt.ErrTokenExpired) {
			return nil, apperr.New(apperr.CodeTokenExpired, "the token has expired")
		}
		if !errors.Is(err, jwt.ErrTokenSignatureInvalid) {
			// Signature verified but a claim failed: no other key would do better.
			return nil, errTokenInvalid
		}
		lastErr = errTokenInvalid
	}
	return nil, lastErr
}

func (a *ConsumerAuthenticator) checkLifetime(p *partner.Partner, c *consumerClaims) error {
	from := a.Now()
	if c.IssuedAt != nil {
		from = c.IssuedAt.Time
	}
	if c.ExpiresAt.Sub(from) > p.MaxTokenLifetime()+a.Leeway {
		return apperr.New(apperr.CodeTokenInvalid, "the token lives longer than this partner allows (%s)", fmt.Sprint(p.MaxTokenLifetime()))
	}
	return nil
}
