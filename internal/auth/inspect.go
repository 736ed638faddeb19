package auth

import (
	"context"
	"errors"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/partner"
)

// Token check names, in the order Authenticate runs them (docs/auth.md,
// "Consumer token errors").
const (
	CheckFormat    = "format"
	CheckAlgorithm = "algorithm"
	CheckIssuer    = "issuer"
	CheckKid       = "kid"
	CheckSignature = "signature"
	CheckTime      = "time"
	CheckAudience  = "audience"
	CheckAccess    = "access"
	CheckSubject   = "subject"
	CheckUser      = "user"
)

// Check outcomes.
const (
	CheckPass = "pass"
	CheckFail = "fail"
	CheckSkip = "skipped"
)

var tokenChecks = []struct{ name, label string }{
	{CheckFormat, "Well-formed JWT (three base64url parts, at most 8 KiB)"},
	{CheckAlgorithm, "Algorithm is RS256, ES256, EdDSA or HS256"},
	{CheckIssuer, "Issuer (iss) is yours, or absent"},
	{CheckKid, "Key id (kid) names one of your enabled keys"},
	{CheckSignature, "Signature verifies with one of your keys"},
	{CheckTime, "Expiry and validity (exp, nbf, iat, lifetime)"},
	{CheckAudience, "Audience (aud)"},
	{CheckAccess, "API access is on"},
	{CheckSubject, "User id (sub or user.id)"},
	{CheckUser, "User may sign in (not logged out, anonymised or erased since)"},
}

// checkOf names the check a refusal belongs to.
func checkOf(e *apperr.Error) string {
	switch e.Reason {
	case ReasonMalformed:
		return CheckFormat
	case ReasonUnsupportedAlg:
		return CheckAlgorithm
	case ReasonUnknownIssuer, ReasonUnknownPartner, ReasonPartnerUndetermined:
		return CheckIssuer
	case ReasonUnknownKid, ReasonNoKey:
		return CheckKid
	case ReasonBadSignature:
		return CheckSignature
	case ReasonMissingExp, ReasonMissingIat, ReasonExpired, ReasonMaxAgeExceeded, ReasonNotYetValid, ReasonIssuedInFuture, ReasonLifetime:
		return CheckTime
	case ReasonAudience:
		return CheckAudience
	case ReasonNoSubject:
		return CheckSubject
	}
	switch e.Code {
	case apperr.CodeUnauthenticated:
		return CheckFormat
	case apperr.CodePartnerDisabled:
		return CheckAccess
	case apperr.CodeTokenInvalid:
		return CheckSubject // FromTokenTx: the subject is not a valid user id
	}
	return CheckUser
}

// TokenCheck is one step of a token's verification.
type TokenCheck struct {
	Name   string `json:"name"`
	Label  string `json:"label"`
	Status string `json:"status"`
	// Detail says what failed (the error's safe message) or, for a
	// passed check, what was found.
	Detail string `json:"detail,omitempty"`
}

// TokenReport is what the token tester shows: the verdict Authenticate
// would give for the partner, and each check passed, failed or not
// reached. It never holds the token; the claims it quotes are the pasted
// token's own (shown to the partner who pasted it, never logged).
type TokenReport struct {
	Valid   bool         `json:"valid"`
	Code    string       `json:"code,omitempty"`
	Reason  string       `json:"reason,omitempty"`
	Message string       `json:"message,omitempty"`
	Checks  []TokenCheck `json:"checks"`
	// Header and claims as read (unverified when the signature failed).
	Algorithm string     `json:"alg,omitempty"`
	Kid       string     `json:"kid,omitempty"`
	Subject   string     `json:"subject,omitempty"`
	ExpiresAt *time.Time `json:"expiresAt,omitempty"`
	// NewUser: the token is valid for a user Perks does not have yet; the
	// first real request creates them.
	NewUser bool `json:"newUser"`
}

// errInspectRollback rolls the tester's transaction back.
var errInspectRollback = errors.New("token inspection: roll back")

// Inspect runs every check Authenticate runs on token, as p's token, and
// reports which passed and which failed, without any effect: the user
// step runs in a transaction that is rolled back (so a valid token for a
// new user reports NewUser instead of creating them). The token is never
// logged or returned.
func (a *ConsumerAuthenticator) Inspect(ctx context.Context, p *partner.Partner, token string) (*TokenReport, error) {
	rep := &TokenReport{}
	unverified := &consumerClaims{}
	if len(token) <= maxTokenBytes {
		if parsed, _, err := jwt.NewParser().ParseUnverified(token, unverified); err == nil {
			rep.Algorithm, _ = parsed.Header["alg"].(string)
			rep.Kid, _ = parsed.Header["kid"].(string)
			rep.Subject = unverified.subject()
			if unverified.ExpiresAt != nil {
				t := unverified.ExpiresAt.UTC()
				rep.ExpiresAt = &t
			}
		}
	}
	_, claims, issuedAt, err := a.verifyToken(ctx, token, "", p)
	if err == nil {
		err = a.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			_, created, err := a.Users.FromTokenTx(ctx, tx, p.ID, claims.subject(), issuedAt, claims.profile())
			if err != nil {
				return err
			}
			rep.NewUser = created
			return errInspectRollback
		})
		if errors.Is(err, errInspectRollback) {
			err = nil
		}
	}
	failed := ""
	if err != nil {
		e := apperr.As(err)
		if e == nil {
			return nil, err
		}
		rep.Code, rep.Reason, rep.Message = string(e.Code), e.Reason, e.Message
		failed = checkOf(e)
	}
	rep.Valid = err == nil
	status := CheckPass
	for _, c := range tokenChecks {
		tc := TokenCheck{Name: c.name, Label: c.label, Status: status}
		switch {
		case c.name == failed:
			tc.Status, tc.Detail = CheckFail, rep.Message
			status = CheckSkip
		case status == CheckPass:
			tc.Detail = passDetail(c.name, rep, p)
		}
		rep.Checks = append(rep.Checks, tc)
	}
	return rep, nil
}

func passDetail(name string, rep *TokenReport, p *partner.Partner) string {
	switch name {
	case CheckAlgorithm:
		return rep.Algorithm
	case CheckKid:
		if rep.Kid == "" {
			return "no kid: every enabled key of the algorithm was tried"
		}
		return rep.Kid
	case CheckIssuer:
		if p.Issuer == nil {
			return "no issuer configured: tokens find you by X-Partner-Slug or a kid only you use"
		}
		return *p.Issuer
	case CheckTime:
		if rep.ExpiresAt != nil {
			return "expires " + rep.ExpiresAt.Format(time.RFC3339)
		}
		return "no exp: this key accepts tokens by their iat"
	case CheckAudience:
		if p.Audience == "" {
			return "no audience required"
		}
		return p.Audience
	case CheckSubject:
		return rep.Subject
	case CheckUser:
		if rep.NewUser {
			return "new user: created on the first real request"
		}
		return "existing user"
	}
	return ""
}
