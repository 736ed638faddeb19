package apperr

// FamilyUnauthenticated groups the codes that mean "this consumer's
// credential does not (or no longer) work". GraphQL sends it as
// extensions.family next to the unchanged code, with extensions.authReason
// saying what a client library should do: get a token (missing), refresh
// (expired), or sign the user out (revoked, invalid, anonymised).
const FamilyUnauthenticated = "UNAUTHENTICATED"

// Auth reasons: the machine-readable reason of the UNAUTHENTICATED family.
// Like codes they never change meaning.
const (
	// AuthMissing: no token was sent (or the Authorization header is not
	// `Bearer <token>`). Get one from the partner's back end.
	AuthMissing = "missing"
	// AuthInvalid: the token does not verify (TOKEN_INVALID; `reason`
	// says which check failed). Minting another the same way fails again.
	AuthInvalid = "invalid"
	// AuthExpired: the token is past exp or its key's max age
	// (TOKEN_EXPIRED). Mint a new one and retry.
	AuthExpired = "expired"
	// AuthRevoked: the user logged out everywhere or was anonymised after
	// the token was issued (TOKEN_REVOKED). Sign the user out.
	AuthRevoked = "revoked"
	// AuthAnonymised: the user's data was erased (USER_ANONYMISED). Sign
	// out; only the partner can revive the account.
	AuthAnonymised = "anonymised"
)

// AuthReason is the UNAUTHENTICATED-family reason of a consumer auth code,
// or "" for a code outside the family.
func AuthReason(c Code) string {
	switch c {
	case CodeUnauthenticated:
		return AuthMissing
	case CodeTokenInvalid:
		return AuthInvalid
	case CodeTokenExpired:
		return AuthExpired
	case CodeTokenRevoked:
		return AuthRevoked
	case CodeUserAnonymised:
		return AuthAnonymised
	}
	return ""
}
