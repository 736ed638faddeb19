package partner

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
)

// MaxCORSOrigins bounds a partner's CORS list (the column's CHECK too).
const MaxCORSOrigins = 20

// ValidateCORSOrigin checks one browser origin allowed to call /graphql
// and returns its canonical spelling, the exact string a browser sends in
// its Origin header: lowercase scheme and host, the port only when it is
// not the scheme's default, no trailing slash. Only https is accepted,
// except http for loopback hosts (localhost, 127.0.0.1, [::1]) so a
// partner's developers can call from their machine. Wildcards, paths,
// queries, credentials and "null" are refused: the server answers with the
// exact origin, never "*".
func ValidateCORSOrigin(s string) (string, error) {
	refuse := func() (string, error) {
		return "", apperr.Field(apperr.CodeInvalidField, "corsOrigins",
			"%q is not an exact origin: use scheme://host[:port] such as https://app.example.com (https, or http for localhost; no path, no wildcard)", s)
	}
	v := strings.TrimSpace(s)
	if len(v) > 300 || strings.ContainsAny(v, "* ;,") {
		return refuse()
	}
	u, err := url.Parse(v)
	if err != nil || u.User != nil || u.Opaque != "" || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/") || u.Host == "" {
		return refuse()
	}
	scheme, host, port := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname()), u.Port()
	loopback := host == "localhost" || host == "127.0.0.1" || host == "::1"
	if scheme != "https" && (scheme != "http" || !loopback) {
		return refuse()
	}
	if !loopback && !(len(host) <= 253 && hostnameRE.MatchString(host) && strings.Contains(host, ".")) && net.ParseIP(host) == nil {
		return refuse()
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return refuse()
		}
		if (scheme == "https" && n == 443) || (scheme == "http" && n == 80) {
			port = ""
		}
	}
	hostport := host
	if strings.Contains(host, ":") {
		hostport = "[" + host + "]"
	}
	if port != "" {
		hostport = net.JoinHostPort(host, port)
	}
	return scheme + "://" + hostport, nil
}

// ValidateCORSOrigins checks and canonicalises a whole list (duplicates
// dropped, blanks ignored).
func ValidateCORSOrigins(list []string) ([]string, error) {
	out := make([]string, 0, len(list))
	for _, s := range list {
		if strings.TrimSpace(s) == "" {
			continue
		}
		v, err := ValidateCORSOrigin(s)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	if len(out) > MaxCORSOrigins {
		return nil, apperr.Field(apperr.CodeInvalidField, "corsOrigins", "at most %d CORS origins", MaxCORSOrigins)
	}
	return out, nil
}

// CORSOrigins returns every origin some partner with API access allows to
// call /graphql. A preflight carries no token, so the origin alone decides
// it; the token a page then sends names its partner.
func (s *Service) CORSOrigins(ctx context.Context, db bun.IDB) ([]string, error) {
	var out []string
	err := db.NewRaw("SELECT DISTINCT unnest(cors_origins) FROM partners WHERE api_enabled AND status = 'active'").Scan(ctx, &out)
	if err != nil {
		return nil, fmt.Errorf("list cors origins: %w", err)
	}
	return out, nil
}
