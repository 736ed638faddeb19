package partner

import (
	"context"
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/perkshq/perks/internal/apperr"
)

// Partner authentication schemes (DESIGN.md section 4).
const (
	SchemeHMAC       = "hmac"
	SchemeEd25519    = "ed25519"
	SchemeRequestJWT = "request_jwt"
)

// Schemes lists every partner authentication scheme.
var Schemes = []string{SchemeHMAC, SchemeEd25519, SchemeRequestJWT}

// Controls are the partner-level switches an operator sets. A nil field is
// left unchanged; for the *int rate limits, a pointer to -1 resets to the
// configured default (NULL), 0 means unlimited.
type Controls struct {
	APIEnabled                 *bool
	RequireHMACV2              *bool
	RequireRequestBinding      *bool
	AllowedOrigins             *[]string
	AllowedSchemes             *[]string
	RateLimitPerMinute         *int
	RateLimitBurst             *int
	ConsumerRateLimitPerMinute *int
	ConsumerRateLimitBurst     *int
	// Audience: "" removes the aud requirement.
	Audience *string
	// MaxTokenLifetimeSeconds must be positive.
	MaxTokenLifetimeSeconds *int
	// Issuer: "" removes the issuer.
	Issuer *string
	// JWKSURL: "" removes the JWKS URL.
	JWKSURL *string
	// FrameAncestors: which origins may frame the webview; empty: none.
	FrameAncestors *[]string
	// CORSOrigins: which browser origins may call /graphql; empty: none.
	CORSOrigins *[]string
}

var hostnameRE = regexp.MustCompile(`^(?i)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.?$`)

// ValidateOrigin checks one allowed-origin entry: an IP address, a CIDR, or
// a host name (resolved when checked). It returns the canonical spelling.
func ValidateOrigin(s string) (string, error) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().String(), nil
	}
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked().String(), nil
	}
	if len(s) <= 253 && hostnameRE.MatchString(s) && strings.ContainsRune(strings.TrimSuffix(s, "."), '.') {
		return strings.ToLower(strings.TrimSuffix(s, ".")), nil
	}
	return "", apperr.Field(apperr.CodeInvalidField, "allowedOrigins", "%q is not an IP address, a CIDR or a fully qualified host name", s)
}

// ValidateJWKSURL checks a JWKS URL: absolute http(s) without credentials.
// Whether plain http is acceptable is the fetcher's decision (development
// only).
func ValidateJWKSURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || len(s) > 2000 {
		return apperr.Field(apperr.CodeInvalidField, "jwksUrl", "the JWKS URL must be an absolute https:// URL without credentials")
	}
	return nil
}

// MaxFrameAncestors bounds a partner's frame-ancestors list.
const MaxFrameAncestors = 20

// frameHostRE is a CSP host-source without path: an optional http(s)
// scheme, a host name (optionally starting with the "*." wildcard) or an
// IPv4 address, and an optional port or "*".
var frameHostRE = regexp.MustCompile(`^(https?://)?(\*\.)?[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*(:([0-9]{1,5}|\*))?$`)

// ValidateFrameAncestor checks one CSP frame-ancestors source expression
// and returns its canonical spelling: 'self', the scheme https: (or
// http:), or a host source such as https://app.example.com,
// https://*.example.com or https://example.com:8443. Paths, quotes other
// than 'self', wildcards alone and anything that could end the header
// directive (';', ',', spaces) are refused.
func ValidateFrameAncestor(s string) (string, error) {
	v := strings.ToLower(strings.TrimSpace(s))
	switch v {
	case "'self'", "self":
		return "'self'", nil
	case "https:", "http:":
		return v, nil
	}
	if len(v) <= 300 && frameHostRE.MatchString(v) && portOK(v) {
		return v, nil
	}
	return "", apperr.Field(apperr.CodeInvalidField, "frameAncestors",
		"%q is not a frame-ancestors source: use 'self', https:, or an origin such as https://app.example.com or https://*.example.com", s)
}

// portOK reports whether a host source's port, if any, is 1-65535 or *.
func portOK(v string) bool {
	host := strings.TrimPrefix(strings.TrimPrefix(v, "https://"), "http://")
	_, port, found := strings.Cut(host, ":")
	if !found || port == "*" {
		return true
	}
	n, err := strconv.Atoi(port)
	return err == nil && n >= 1 && n <= 65535
}

// ValidateFrameAncestors checks and canonicalises a whole list; "'none'"
// alone stands for the empty list.
func ValidateFrameAncestors(list []string) ([]string, error) {
	out := make([]string, 0, len(list))
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if strings.EqualFold(s, "'none'") || strings.EqualFold(s, "none") {
			if len(list) > 1 {
				return nil, apperr.Field(apperr.CodeInvalidField, "frameAncestors", "'none' cannot be combined with other sources")
			}
			continue
		}
		v, err := ValidateFrameAncestor(s)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	if len(out) > MaxFrameAncestors {
		return nil, apperr.Field(apperr.CodeInvalidField, "frameAncestors", "at most %d frame ancestors", MaxFrameAncestors)
	}
	return out, nil
}

func (c *Controls) validate() error {
	if c.CORSOrigins != nil {
		out, err := ValidateCORSOrigins(*c.CORSOrigins)
		if err != nil {
			return err
		}
		c.CORSOrigins = &out
	}
	if c.FrameAncestors != nil {
		out, err := ValidateFrameAncestors(*c.FrameAncestors)
		if err != nil {
			return err
		}
		c.FrameAncestors = &out
	}
	if c.AllowedOrigins != nil {
		out := make([]string, 0, len(*c.AllowedOrigins))
		for _, o := range *c.AllowedOrigins {
			if strings.TrimSpace(o) == "" {
				continue
			}
			v, err := ValidateOrigin(o)
			if err != nil {
				return err
			}
			out = append(out, v)
		}
		if len(out) > 100 {
			return apperr.Field(apperr.CodeInvalidField, "allowedOrigins", "at most 100 allowed origins")
		}
		c.AllowedOrigins = &out
	}
	if c.AllowedSchemes != nil {
		out := []string{}
		for _, sc := range *c.AllowedSchemes {
			sc = strings.TrimSpace(sc)
			if sc == "" {
				continue
			}
			ok := false
			for _, known := range Schemes {
				ok = ok || known == sc
			}
			if !ok {
				return apperr.Field(apperr.CodeInvalidField, "allowedSchemes", "unknown scheme %q (use %s)", sc, strings.Join(Schemes, ", "))
			}
			out = append(out, sc)
		}
		c.AllowedSchemes = &out
	}
	for name, v := range map[string]*int{
		"rateLimitPerMinute": c.RateLimitPerMinute, "rateLimitBurst": c.RateLimitBurst,
		"consumerRateLimitPerMinute": c.ConsumerRateLimitPerMinute, "consumerRateLimitBurst": c.ConsumerRateLimitBurst,
	} {
		if v != nil && *v < -1 {
			return apperr.Field(apperr.CodeInvalidField, name, "%s must be 0 (unlimited), a positive number, or default", name)
		}
	}
	if c.MaxTokenLifetimeSeconds != nil && *c.MaxTokenLifetimeSeconds <= 0 {
		return apperr.Field(apperr.CodeInvalidField, "maxTokenLifetime", "the maximum token lifetime must be positive")
	}
	if c.JWKSURL != nil && *c.JWKSURL != "" {
		if err := ValidateJWKSURL(*c.JWKSURL); err != nil {
			return err
		}
	}
	if c.Audience != nil && len(*c.Audience) > 500 {
		return apperr.Field(apperr.CodeInvalidField, "audience", "the audience must be at most 500 characters")
	}
	return nil
}

// UpdateControls applies the set fields of c to the partner and returns the
// updated partner.
func (s *Service) UpdateControls(ctx context.Context, db bun.IDB, partnerID uuid.UUID, c Controls) (*Partner, error) {
	s.Changed()
	if err := c.validate(); err != nil {
		return nil, err
	}
	p := &Partner{ID: partnerID}
	q := db.NewUpdate().Model(p).Where("id = ?", partnerID).Set("updated_at = now()").Returning("*")
	if c.APIEnabled != nil {
		q = q.Set("api_enabled = ?", *c.APIEnabled)
	}
	if c.RequireHMACV2 != nil {
		q = q.Set("require_hmac_v2 = ?", *c.RequireHMACV2)
	}
	if c.RequireRequestBinding != nil {
		q = q.Set("require_request_binding = ?", *c.RequireRequestBinding)
	}
	if c.AllowedOrigins != nil {
		q = q.Set("allowed_origins = ?", pgArray(*c.AllowedOrigins))
	}
	if c.AllowedSchemes != nil {
		q = q.Set("allowed_schemes = ?", pgArray(*c.AllowedSchemes))
	}
	if c.FrameAncestors != nil {
		q = q.Set("frame_ancestors = ?", pgArray(*c.FrameAncestors))
	}
	if c.CORSOrigins != nil {
		q = q.Set("cors_origins = ?", pgArray(*c.CORSOrigins))
	}
	limit := func(col string, v *int) {
		switch {
		case v == nil:
		case *v < 0:
			q = q.Set(col + " = NULL")
		default:
			q = q.Set(col+" = ?", *v)
		}
	}
	limit("rate_limit_per_minute", c.RateLimitPerMinute)
	limit("rate_limit_burst", c.RateLimitBurst)
	limit("consumer_rate_limit_per_minute", c.ConsumerRateLimitPerMinute)
	limit("consumer_rate_limit_burst", c.ConsumerRateLimitBurst)
	if c.Audience != nil {
		q = q.Set("audience = ?", *c.Audience)
	}
	if c.MaxTokenLifetimeSeconds != nil {
		q = q.Set("max_token_lifetime_seconds = ?", *c.MaxTokenLifetimeSeconds)
	}
	nullable := func(col string, v *string) {
		switch {
		case v == nil:
		case *v == "":
			q = q.Set(col + " = NULL")
		default:
			q = q.Set(col+" = ?", *v)
		}
	}
	nullable("issuer", c.Issuer)
	nullable("jwks_url", c.JWKSURL)
	res, err := q.Exec(ctx)
	if err != nil {
		if strings.Contains(err.Error(), "partners_issuer_key") {
			return nil, apperr.Field(apperr.CodeConflict, "issuer", "another partner already uses this issuer")
		}
		return nil, fmt.Errorf("update partner controls: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, apperr.New(apperr.CodeNotFound, "partner not found")
	}
	return p, nil
}

// List returns every partner, by slug.
func (s *Service) List(ctx context.Context, db bun.IDB) ([]Partner, error) {
	var ps []Partner
	if err := db.NewSelect().Model(&ps).OrderExpr("slug").Scan(ctx); err != nil {
		return nil, fmt.Errorf("list partners: %w", err)
	}
	return ps, nil
}

func pgArray(v []string) any {
	if v == nil {
		v = []string{}
	}
	return pgdialect.Array(v)
}
