package auth

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"math"
	"net/url"
	"reflect"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/partner"
)

// The request-JWT scheme (seed 001). The partner signs, with its shared
// "partnerSecret", an HS256 JWT per request:
//
//	{"iss": partnerId, "sub": token, "iat": now, "data_header": json_encode(headers), "data_body": json_encode(body)}
//
// POST /auth/token carries one with an empty sub and returns an opaque
// back-end token; every later call carries one whose sub is that token.

// requestClaims are the claims of a request JWT. iat is a number (PHP's
// time()); data_header and data_body are normally JSON strings holding JSON
// (json_encode output) but a JSON value is accepted as well.
type requestClaims struct {
	Iss        string          `json:"iss"`
	Sub        *string         `json:"sub"`
	Iat        *float64        `json:"iat"`
	Exp        *float64        `json:"exp"`
	DataHeader json.RawMessage `json:"data_header"`
	DataBody   json.RawMessage `json:"data_body"`
	// DataBodySHA256 replaces data_body for large bodies: the SHA-256 of
	// the raw body, hex or base64url (docs/auth.md, "Digest claim").
	DataBodySHA256 *string `json:"data_body_sha256"`
	// Htm and Htu bind the token to its request (RFC 9449 claim names).
	Htm *string `json:"htm"`
	Htu *string `json:"htu"`
	// Jti, when present, is a nonce: the token serves one request.
	Jti *string `json:"jti"`
}

// maxRequestJWTBytes bounds a request JWT: data_body repeats the body, so
// it may be larger than a consumer token, but never larger than the body
// limit plus headroom (enforced by the body limit of the transport too).
const maxRequestJWTBytes = 4 << 20

var errRequestJWT = apperr.New(apperr.CodeInvalidSignature, "the request JWT does not verify")

// AuthenticateTokenRequest verifies the request JWT of POST /auth/token,
// whose sub must be empty, and returns the partner and credential to issue
// a back-end token for.
func (a *PartnerAuthenticator) AuthenticateTokenRequest(ctx context.Context, r Request) (*PartnerPrincipal, error) {
	return a.authenticateRequestJWT(ctx, r, true)
}

func bearer(h Headers) (string, error) {
	v := h.Get(HeaderAuthorization)
	scheme, tok, ok := strings.Cut(v, " ")
	tok = strings.TrimSpace(tok)
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return "", apperr.New(apperr.CodeUnauthenticated, "the Authorization header must be `Bearer <request JWT>`")
	}
	return tok, nil
}

func (a *PartnerAuthenticator) authenticateRequestJWT(ctx context.Context, r Request, tokenRequest bool) (*PartnerPrincipal, error) {
	tok, err := bearer(r.Header)
	if err != nil {
		return nil, err
	}
	if len(tok) > maxRequestJWTBytes {
		return nil, errRequestJWT
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, errRequestJWT
	}
	hb, err1 := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[0], "="))
	cb, err2 := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err1 != nil || err2 != nil {
		return nil, errRequestJWT
	}
	var header struct {
		Alg string `json:"alg"`
		Typ string `json:"typ"`
	}
	if json.Unmarshal(hb, &header) != nil || header.Alg != "HS256" || (header.Typ != "" && !strings.EqualFold(header.Typ, "JWT")) {
		// Exactly HS256: `none` and every other algorithm are refused.
		return nil, errRequestJWT
	}
	var claims requestClaims
	if json.Unmarshal(cb, &claims) != nil || claims.Iss == "" || len(claims.Iss) > 200 {
		return nil, errRequestJWT
	}
	sig, ok := requestJWTSignature(parts[2])
	if !ok {
		return nil, errRequestJWT
	}

	// iss is the partner's id (its UUID), or its slug for convenience.
	var p *partner.Partner
	if id, perr := uuid.Parse(claims.Iss); perr == nil {
		p, err = a.Partners.Auth().ByID(ctx, a.DB, id)
	} else {
		p, err = a.Partners.Auth().BySlug(ctx, a.DB, claims.Iss)
	}
	secrets := []partner.SharedSecret{{Secret: dummySecret}}
	known := false
	if err == nil {
		s, serr := a.Partners.Auth().EnabledSecrets(ctx, a.DB, p.ID, partner.KindRequestJWT)
		if serr != nil {
			return nil, serr
		}
		if len(s) > 0 {
			secrets, known = s, true
		}
	} else if !apperr.Is(err, apperr.CodeNotFound) {
		return nil, err
	}
	input := []byte(parts[0] + "." + parts[1])
	var credID uuid.UUID
	matched := false
	for _, s := range secrets {
		m := hmac.New(sha256.New, s.Secret)
		m.Write(input)
		if hmac.Equal(m.Sum(nil), sig) && !matched {
			matched, credID = true, s.CredentialID
		}
	}
	if !known || !matched {
		return nil, errRequestJWT
	}

	// The signature verified: the rest may say precisely what is wrong.
	now := a.Now()
	if claims.Iat == nil || math.IsNaN(*claims.Iat) || math.IsInf(*claims.Iat, 0) {
		return nil, apperr.New(apperr.CodeInvalidSignature, "the request JWT needs an iat claim (Unix seconds)")
	}
	iat := time.Unix(int64(*claims.Iat), 0)
	if err := CheckTimestamp(iat, now, a.Skew); err != nil {
		return nil, err
	}
	if claims.Exp != nil && time.Unix(int64(*claims.Exp), 0).Before(now.Add(-a.Skew)) {
		return nil, apperr.New(apperr.CodeTokenExpired, "the request JWT has expired")
	}
	sub := ""
	if claims.Sub != nil {
		sub = *claims.Sub
	}
	if tokenRequest {
		if sub != "" {
			return nil, apperr.New(apperr.CodeTokenInvalid, "the request JWT of POST /auth/token must have an empty sub")
		}
	} else {
		if sub == "" {
			return nil, apperr.New(apperr.CodeUnauthenticated, "the request JWT's sub must be a back-end token from POST /auth/token")
		}
		_, state, err := a.Partners.CheckBackendToken(ctx, a.DB, p.ID, sub)
		if err != nil {
			return nil, err
		}
		switch state {
		case partner.BackendTokenExpired:
			return nil, apperr.New(apperr.CodeTokenExpired, "the back-end token expired; get a new one from POST /auth/token")
		case partner.BackendTokenUnknown:
			return nil, apperr.New(apperr.CodeTokenInvalid, "the request JWT's sub is not a live back-end token of this partner")
		}
	}
	if claims.DataBodySHA256 != nil {
		if err := checkBodyDigest(*claims.DataBodySHA256, r.Body); err != nil {
			return nil, err
		}
		if len(claims.DataBody) > 0 {
			if err := checkDataBody(claims.DataBody, r.Body); err != nil {
				return nil, err
			}
		}
	} else if err := checkDataBody(claims.DataBody, r.Body); err != nil {
		return nil, err
	}
	bound, err := checkBinding(claims, r)
	if err != nil {
		return nil, err
	}
	if !bound && p.RequireRequestBinding {
		return nil, apperr.New(apperr.CodeRequestBindingRequired, "this partner requires request JWTs to carry the htm (method) and htu (URL) claims")
	}
	if claims.Jti != nil && (*claims.Jti == "" || len(*claims.Jti) > 255) {
		return nil, apperr.New(apperr.CodeInvalidSignature, "the request JWT's jti must be 1 to 255 characters")
	}
	if err := checkDataHeader(claims.DataHeader, r.Header); err != nil {
		return nil, err
	}
	idem, err := IdempotencyKey(r.Header)
	if err != nil {
		return nil, err
	}
	return a.finish(ctx, r, verified{
		partner: p, credentialID: credID, scheme: SchemeRequestJWT, replay: requestJWTReplay(claims, sig, bound, r),
		signedAt: iat, idempotencyKey: idem,
	})
}

// requestJWTSignature decodes the signature segment: base64url as JWS says,
// or the 64 hex characters PHP's hash_hmac returns by default (the seed's
// pseudo-code is ambiguous and both carry the same MAC).
func requestJWTSignature(seg string) ([]byte, bool) {
	if len(seg) == 64 {
		if b, err := hex.DecodeString(seg); err == nil {
			return b, true
		}
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(seg, "="))
	if err != nil || len(b) != sha256.Size {
		return nil, false
	}
	return b, true
}

// unwrapEncoded returns the JSON text a data_* claim holds: the content of
// a JSON string (json_encode output), or the raw JSON value itself.
func unwrapEncoded(raw json.RawMessage) ([]byte, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, false
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return nil, true
		}
		return []byte(s), true
	}
	return raw, true
}

// emptyEncodings are what clients send as data_body for a request without
// a body: nothing, an empty string, or json_encode of "", null, [] or {}.
var emptyEncodings = map[string]bool{"": true, `""`: true, "null": true, "[]": true, "{}": true}

var errBodyMismatch = apperr.New(apperr.CodeInvalidSignature, "the request JWT's data_body does not match the request body")

// checkDataBody binds the JWT to the body: data_body must equal the raw
// body byte for byte, or, when the client re-encoded it (PHP's json_encode
// escapes "/" as "\/" and non-ASCII as \uXXXX), be the same JSON value.
// An empty body matches an absent or "empty" data_body.
func checkDataBody(claim json.RawMessage, body []byte) error {
	enc, present := unwrapEncoded(claim)
	if len(bytes.TrimSpace(body)) == 0 {
		if !present || emptyEncodings[strings.TrimSpace(string(enc))] {
			return nil
		}
		return errBodyMismatch
	}
	if !present {
		return apperr.New(apperr.CodeInvalidSignature, "the request JWT must carry data_body equal to the request body")
	}
	if bytes.Equal(enc, body) {
		return nil
	}
	if jsonEqual(enc, body) {
		return nil
	}
	return errBodyMismatch
}

func jsonEqual(a, b []byte) bool {
	var va, vb any
	da := json.NewDecoder(bytes.NewReader(a))
	da.UseNumber()
	db := json.NewDecoder(bytes.NewReader(b))
	db.UseNumber()
	if da.Decode(&va) != nil || db.Decode(&vb) != nil || da.More() || db.More() {
		return false
	}
	return reflect.DeepEqual(va, vb)
}

// checkDataHeader: when data_header is present and not empty, every header
// it names must be on the request with that value. It may be an object
// {"Name":"value"} or PHP curl's list ["Name: value"].
func checkDataHeader(claim json.RawMessage, h Headers) error {
	enc, present := unwrapEncoded(claim)
	if !present || emptyEncodings[strings.TrimSpace(string(enc))] {
		return nil
	}
	mismatch := apperr.New(apperr.CodeInvalidSignature, "the request JWT's data_header does not match the request headers")
	want := map[string]string{}
	var obj map[string]any
	var list []string
	switch {
	case json.Unmarshal(enc, &obj) == nil:
		for k, v := range obj {
			s, ok := v.(string)
			if !ok {
				if arr, isArr := v.([]any); isArr && len(arr) == 1 {
					s, ok = arr[0].(string)
				}
			}
			if !ok {
				return mismatch
			}
			want[k] = s
		}
	case json.Unmarshal(enc, &list) == nil:
		for _, line := range list {
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				return mismatch
			}
			want[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	default:
		return mismatch
	}
	for k, v := range want {
		if strings.EqualFold(k, HeaderAuthorization) {
			continue // the JWT cannot contain itself
		}
		if strings.TrimSpace(h.Get(k)) != strings.TrimSpace(v) {
			return mismatch
		}
	}
	return nil
}

// safeRequest is the request hash of every read served by an unbound token
// without jti: such a token may repeat reads (the seed's body-less GETs of
// two users in one second are the same bytes) but never serve a write.
var safeRequest = []byte("perks:safe-methods")

// requestJWTReplay is the replay-cache entry of a verified request JWT.
// The key is the jti when present (a nonce: one request, whatever the
// token around it), else the token's signature. The request it serves:
//
//   - with a jti, exactly this request (method, path and query, body);
//   - bound by htm/htu without jti, a read needs no record (the token only
//     works for that one URL and repeating a read is harmless), a write is
//     this request;
//   - unbound, a read is "any read" and a write exactly this request, so a
//     token first used for a GET never works for a DELETE, and a DELETE
//     token never erases a second user.
func requestJWTReplay(c requestClaims, sig []byte, bound bool, r Request) []replayEntry {
	exact := requestDigest(r.Method, r.PathQuery, r.Body)
	if c.Jti != nil {
		return []replayEntry{{digest: proofDigest("request_jwt-jti", []byte(*c.Jti), nil), request: exact}}
	}
	key := proofDigest("request_jwt", sig, nil)
	switch {
	case !IsSafe(r.Method):
		return []replayEntry{{digest: key, request: exact}}
	case bound:
		return nil
	default:
		return []replayEntry{{digest: key, request: safeRequest}}
	}
}

var errBindingMismatch = apperr.New(apperr.CodeRequestBindingMismatch, "the request JWT's htm/htu do not match this request's method and path")

// checkBinding verifies htm and htu when present and reports whether the
// token is bound (carries both). htm must equal the method exactly. htu is
// compared on its path, and on its query when it has one (RFC 9449's htu
// has none; a partner may add it to bind the query too); its scheme and
// host are ignored, because behind a TLS-terminating proxy or load
// balancer the server cannot know the URL the client used, and the
// partner's secret already names the audience. A relative htu ("/path")
// is accepted.
func checkBinding(c requestClaims, r Request) (bool, error) {
	if c.Htm != nil && *c.Htm != r.Method {
		return false, errBindingMismatch
	}
	if c.Htu != nil {
		u, err := url.Parse(*c.Htu)
		if err != nil || *c.Htu == "" {
			return false, errBindingMismatch
		}
		path, query, _ := strings.Cut(r.PathQuery, "?")
		if u.EscapedPath() != path && u.Path != path {
			return false, errBindingMismatch
		}
		if u.RawQuery != "" && u.RawQuery != query {
			return false, errBindingMismatch
		}
	}
	return c.Htm != nil && c.Htu != nil, nil
}

// checkBodyDigest verifies data_body_sha256: the SHA-256 of the raw body
// bytes, as 64 hex characters or base64url (padding optional; standard
// base64 too). It lets a 10,000-item multistore keep a small token.
func checkBodyDigest(claim string, body []byte) error {
	sum := sha256.Sum256(body)
	var got []byte
	if len(claim) == 2*sha256.Size {
		got, _ = hex.DecodeString(claim)
	}
	if got == nil {
		b, ok := decodeBase64(claim)
		if ok {
			got = b
		}
	}
	if len(got) != sha256.Size {
		return apperr.New(apperr.CodeInvalidSignature, "the request JWT's data_body_sha256 must be the SHA-256 of the body, hex or base64url")
	}
	if !hmac.Equal(got, sum[:]) {
		return errBodyMismatch
	}
	return nil
}
