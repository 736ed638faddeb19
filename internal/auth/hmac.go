// Package auth authenticates partner back ends (signed requests) and
// consumers (partner-minted JWTs). It returns *apperr.Error values with the
// codes of docs/errors.md and never says which part of a credential was
// wrong beyond what the caller can already know.
package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/partner"
)

// Header names of the HMAC scheme (seed 000).
const (
	HeaderPartnerSlug = "X-Partner-Slug"
	HeaderSignature   = "X-Signature"
)

// Headers is the subset of http.Header the authenticators read.
type Headers interface {
	Get(key string) string
}

// Request is what a signature covers.
type Request struct {
	Method    string
	PathQuery string // the request URI as sent: path and raw query
	Body      []byte
	Header    Headers
}

// PartnerPrincipal is an authenticated partner back end.
type PartnerPrincipal struct {
	Partner      *partner.Partner
	CredentialID uuid.UUID
	Scheme       string
}

// Schemes.
const (
	SchemeHMAC = "hmac"
)

// PartnerAuthenticator verifies signed partner requests.
type PartnerAuthenticator struct {
	DB       bun.IDB
	Partners *partner.Service
	Skew     time.Duration
	Now      func() time.Time
}

var errBadSignature = apperr.New(apperr.CodeInvalidSignature, "the request signature does not verify")

// signature is one parsed X-Signature header.
type signature struct {
	timestamp int64
	rawTS     string
	v1, v2    [][]byte
}

// maxSignatureEntries bounds the work one header can cause.
const maxSignatureEntries = 8

func parseSignature(h string) (*signature, error) {
	if h == "" || len(h) > 2048 {
		return nil, errBadSignature
	}
	sig := &signature{}
	entries := strings.Split(h, ",")
	if len(entries) > maxSignatureEntries+1 {
		return nil, errBadSignature
	}
	for _, e := range entries {
		k, v, ok := strings.Cut(strings.TrimSpace(e), "=")
		if !ok {
			return nil, errBadSignature
		}
		switch k {
		case "t":
			if sig.rawTS != "" {
				return nil, errBadSignature
			}
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 {
				return nil, errBadSignature
			}
			sig.timestamp, sig.rawTS = n, v
		case "v1", "v2":
			b, err := hex.DecodeString(v)
			if err != nil || len(b) != sha256.Size {
				return nil, errBadSignature
			}
			if k == "v1" {
				sig.v1 = append(sig.v1, b)
			} else {
				sig.v2 = append(sig.v2, b)
			}
		default:
			// Unknown schemes are ignored so new versions can be added
			// without breaking older servers.
		}
	}
	if sig.rawTS == "" || len(sig.v1)+len(sig.v2) == 0 {
		return nil, errBadSignature
	}
	return sig, nil
}

// SignV1 is the seed-000 signature: hex(HMAC-SHA256(secret, t + "." + body)).
func SignV1(secret []byte, ts string, body []byte) string {
	return hex.EncodeToString(macV1(secret, ts, body))
}

func macV1(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// SignV2 also covers the method and the path with its query, so a signature
// cannot be replayed against another route or resource.
func SignV2(secret []byte, ts, method, pathQuery string, body []byte) string {
	return hex.EncodeToString(macV2(secret, ts, method, pathQuery, body))
}

func macV2(secret []byte, ts, method, pathQuery string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	fmt.Fprintf(m, "%s.%s.%s.", ts, method, pathQuery)
	m.Write(body)
	return m.Sum(nil)
}

// CheckTimestamp refuses timestamps more than skew away from now, in both
// directions.
func CheckTimestamp(ts, now time.Time, skew time.Duration) error {
	d := now.Sub(ts)
	if d > skew || d < -skew {
		return apperr.New(apperr.CodeTimestampOutOfRange, "the signature timestamp is more than %d seconds away from the server's clock", int(skew.Seconds()))
	}
	return nil
}

// dummySecret keeps unknown-partner requests on the same code path (and
// roughly the same time) as known ones.
var dummySecret = []byte("perks-unknown-partner-dummy-secret")

// AuthenticateHMAC verifies the x-partner-slug / x-signature scheme.
func (a *PartnerAuthenticator) AuthenticateHMAC(ctx context.Context, r Request) (*PartnerPrincipal, error) {
	sig, err := parseSignature(r.Header.Get(HeaderSignature))
	if err != nil {
		return nil, err
	}
	now := a.Now()
	if err := CheckTimestamp(time.Unix(sig.timestamp, 0), now, a.Skew); err != nil {
		return nil, err
	}
	slug := r.Header.Get(HeaderPartnerSlug)
	p, err := a.Partners.BySlug(ctx, a.DB, slug)
	secrets := []partner.SharedSecret{{Secret: dummySecret}}
	known := false
	if err == nil {
		s, serr := a.Partners.EnabledSecrets(ctx, a.DB, p.ID, partner.KindHMAC)
		if serr != nil {
			return nil, serr
		}
		if len(s) > 0 {
			secrets, known = s, true
		}
	} else if !apperr.Is(err, apperr.CodeNotFound) {
		return nil, err
	}

	var matched []byte
	var credID uuid.UUID
	match := func(got [][]byte, want []byte, id uuid.UUID) {
		for _, g := range got {
			// Compare every candidate so timing does not depend on which matched.
			if hmac.Equal(g, want) && matched == nil {
				matched, credID = g, id
			}
		}
	}
	for _, s := range secrets {
		if p == nil || !p.RequireHMACV2 {
			match(sig.v1, macV1(s.Secret, sig.rawTS, r.Body), s.CredentialID)
		}
		if len(sig.v2) > 0 {
			match(sig.v2, macV2(s.Secret, sig.rawTS, r.Method, r.PathQuery, r.Body), s.CredentialID)
		}
	}
	if !known || matched == nil {
		return nil, errBadSignature
	}
	if !p.APIEnabled {
		return nil, apperr.New(apperr.CodePartnerDisabled, "API access is disabled for this partner")
	}
	if err := a.rememberSignature(ctx, p.ID, matched, time.Unix(sig.timestamp, 0)); err != nil {
		return nil, err
	}
	if err := a.Partners.TouchCredential(ctx, a.DB, p.ID, credID); err != nil {
		return nil, err
	}
	return &PartnerPrincipal{Partner: p, CredentialID: credID, Scheme: SchemeHMAC}, nil
}

// rememberSignature accepts each signature once. The digest is of the
// matching MAC itself, not the header, so adding junk entries to a captured
// header does not make it new. Entries outlive the skew window and are then
// pruned by a periodic job.
func (a *PartnerAuthenticator) rememberSignature(ctx context.Context, partnerID uuid.UUID, mac []byte, ts time.Time) error {
	digest := sha256.Sum256(mac)
	res, err := a.DB.NewRaw(
		"INSERT INTO replay_cache (partner_id, digest, expires_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
		partnerID, digest[:], ts.Add(a.Skew+time.Minute).UTC(),
	).Exec(ctx)
	if err != nil {
		return fmt.Errorf("replay cache: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return apperr.New(apperr.CodeSignatureReplayed, "this signature was already used; sign each request afresh")
	}
	return nil
}

// PruneReplayCache deletes expired replay-cache entries.
func PruneReplayCache(ctx context.Context, db bun.IDB, now time.Time) (int64, error) {
	res, err := db.NewRaw("DELETE FROM replay_cache WHERE expires_at < ?", now.UTC()).Exec(ctx)
	if err != nil {
		return 0, fmt.Errorf("prune replay cache: %w", err)
	}
	return res.RowsAffected()
}

// IsAuthError reports whether err is one of the authentication codes.
func IsAuthError(err error) bool {
	var e *apperr.Error
	return errors.As(err, &e) && apperr.Lookup(e.Code).Status == 401
}
