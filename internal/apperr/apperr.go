// Package apperr holds the stable error codes that Perks shows to callers and
// the error type that carries them from the domain to the transports.
//
// Domain packages return *Error values (or wrap them with fmt.Errorf("...: %w"))
// when the failure is the caller's to fix; anything else is an internal error.
// Transports (REST, GraphQL) look the code up with As and map it to a status
// and a body; they never show the message of a non-*Error error, because it
// may carry internals. The list of codes is documented in docs/errors.md, and
// a test keeps that document and this list in sync.
package apperr

import (
	"errors"
	"fmt"
)

// Code is a stable, machine-readable error code. Codes never change meaning
// once published; new failure modes get new codes.
type Code string

// Request-shape errors.
const (
	CodeMalformedJSON        Code = "MALFORMED_JSON"
	CodeInvalidField         Code = "INVALID_FIELD"
	CodeUnknownField         Code = "UNKNOWN_FIELD"
	CodeMissingField         Code = "MISSING_FIELD"
	CodePayloadTooLarge      Code = "PAYLOAD_TOO_LARGE"
	CodeUnsupportedMediaType Code = "UNSUPPORTED_MEDIA_TYPE"
	CodeMethodNotAllowed     Code = "METHOD_NOT_ALLOWED"
	CodeRouteNotFound        Code = "ROUTE_NOT_FOUND"
	CodeBadRequest           Code = "BAD_REQUEST"
)

// GraphQL documents refused before they are validated or run (graph/limits.go).
const (
	CodeQueryTooLarge           Code = "QUERY_TOO_LARGE"
	CodeDepthLimitExceeded      Code = "DEPTH_LIMIT_EXCEEDED"
	CodeComplexityLimitExceeded Code = "COMPLEXITY_LIMIT_EXCEEDED"
	CodeMutationLimitExceeded   Code = "MUTATION_LIMIT_EXCEEDED"
)

// Authentication and authorisation errors.
const (
	CodeUnauthenticated      Code = "UNAUTHENTICATED"
	CodeInvalidSignature     Code = "INVALID_SIGNATURE"
	CodeTimestampOutOfRange  Code = "TIMESTAMP_OUT_OF_RANGE"
	CodeSignatureReplayed    Code = "SIGNATURE_REPLAYED"
	CodeTokenInvalid         Code = "TOKEN_INVALID"
	CodeTokenExpired         Code = "TOKEN_EXPIRED"
	CodeTokenRevoked         Code = "TOKEN_REVOKED"
	CodeUserAnonymised       Code = "USER_ANONYMISED"
	CodeForbidden            Code = "FORBIDDEN"
	CodePartnerDisabled      Code = "PARTNER_DISABLED"
	CodeRateLimited          Code = "RATE_LIMITED"
	CodeIdempotencyKeyNeeded Code = "IDEMPOTENCY_KEY_REQUIRED"
	CodeOriginNotAllowed     Code = "ORIGIN_NOT_ALLOWED"
	CodeSchemeNotAllowed     Code = "SCHEME_NOT_ALLOWED"
	CodeSignatureV2Required  Code = "SIGNATURE_V2_REQUIRED"
	// Request binding (issue 11, section 1).
	CodeSignatureReused        Code = "SIGNATURE_REUSED"
	CodeRequestBindingRequired Code = "REQUEST_BINDING_REQUIRED"
	CodeRequestBindingMismatch Code = "REQUEST_BINDING_MISMATCH"
	CodeRequestHeadersTooLarge Code = "REQUEST_HEADERS_TOO_LARGE"
)

// Resource errors.
const (
	CodeNotFound     Code = "NOT_FOUND"
	CodeUserNotFound Code = "USER_NOT_FOUND"
	CodeConflict     Code = "CONFLICT"
)

// Idempotency errors.
const (
	CodeIdempotencyKeyReused  Code = "IDEMPOTENCY_KEY_REUSED"
	CodeIdempotencyInProgress Code = "IDEMPOTENCY_IN_PROGRESS"
	CodeIdempotencyKeyInvalid Code = "IDEMPOTENCY_KEY_INVALID"
)

// Points and earning errors.
const (
	CodeInsufficientPoints   Code = "INSUFFICIENT_POINTS"
	CodePointsOutOfRange     Code = "POINTS_OUT_OF_RANGE"
	CodeActionNotFound       Code = "ACTION_NOT_FOUND"
	CodeActionNotAllowed     Code = "ACTION_NOT_ALLOWED"
	CodeActionInactive       Code = "ACTION_INACTIVE"
	CodeCooldown             Code = "COOLDOWN"
	CodeDailyCapReached      Code = "DAILY_CAP_REACHED"
	CodeLifetimeCapReached   Code = "LIFETIME_CAP_REACHED"
	CodeVariablePointsDenied Code = "VARIABLE_POINTS_NOT_ALLOWED"
	// CodeAmountRequired: a per-amount rule was earned without an amount.
	CodeAmountRequired Code = "AMOUNT_REQUIRED"
	// CodeNoPointsEarned: the earn computes to no points (an amount too
	// small for the rule's rate); nothing was recorded.
	CodeNoPointsEarned Code = "NO_POINTS_EARNED"
)

// Earn lifecycle errors: reversal (POST /integrations/actions/{reference}/reverse)
// and confirm/cancel of a held earn (docs/points.md).
const (
	CodeEarnNotFound        Code = "EARN_NOT_FOUND"
	CodeEarnFullyReversed   Code = "EARN_FULLY_REVERSED"
	CodeReversalExceedsEarn Code = "REVERSAL_EXCEEDS_EARN"
	CodeEarnNotPending      Code = "EARN_NOT_PENDING"
	CodeEarnCancelled       Code = "EARN_CANCELLED"
)

// Campaign errors (issue 14): a campaign's condition is a CEL expression
// checked when the campaign is saved.
const (
	// CodeInvalidCondition: the condition does not parse, names an unknown
	// variable or field, or is not a bool; the detail gives line and column.
	CodeInvalidCondition Code = "INVALID_CONDITION"
	// CodeConditionTooCostly: the condition's estimated evaluation cost is
	// above the limit (large comprehensions, nested loops over lists).
	CodeConditionTooCostly Code = "CONDITION_TOO_COSTLY"
)

// Referral errors (issue 15, docs/referrals.md).
const (
	// CodeReferralCodeNotFound: no user of the partner has this code.
	CodeReferralCodeNotFound Code = "REFERRAL_CODE_NOT_FOUND"
	// CodeReferralCodeTaken: another user of the partner has this code.
	CodeReferralCodeTaken Code = "REFERRAL_CODE_TAKEN"
	// CodeReferralAlreadyAttributed: the user already has a referrer.
	CodeReferralAlreadyAttributed Code = "REFERRAL_ALREADY_ATTRIBUTED"
	// CodeReferralWindowClosed: the user was created too long ago.
	CodeReferralWindowClosed Code = "REFERRAL_WINDOW_CLOSED"
	// CodeSelfReferral: the code is the user's own, or a user with the
	// same email's.
	CodeSelfReferral Code = "SELF_REFERRAL"
	// CodeReferralLoop: the referrer was (directly or not) referred by
	// the user.
	CodeReferralLoop Code = "REFERRAL_LOOP"
)

// Catalog and voucher errors.
const (
	CodeOutOfStock       Code = "OUT_OF_STOCK"
	CodeLimitReached     Code = "LIMIT_REACHED"
	CodeGiftUnavailable  Code = "GIFT_UNAVAILABLE"
	CodeNotInCountry     Code = "NOT_IN_COUNTRY"
	CodeTierTooLow       Code = "TIER_TOO_LOW"
	CodeCodesExhausted   Code = "CODES_EXHAUSTED"
	CodeVoucherNotFound  Code = "VOUCHER_NOT_FOUND"
	CodeVoucherNotActive Code = "VOUCHER_NOT_ACTIVE"
	CodeOTPInvalid       Code = "OTP_INVALID"
	CodeOTPExpired       Code = "OTP_EXPIRED"
	CodeOTPLocked        Code = "OTP_LOCKED"
	CodeGiftNotFound     Code = "GIFT_NOT_FOUND"
	CodeWrongChannel     Code = "REDEMPTION_CHANNEL_MISMATCH"
	CodeCodeSource       Code = "CODE_SOURCE_MISMATCH"
)

// Webhook errors.
const (
	CodeWebhookURLForbidden     Code = "WEBHOOK_URL_FORBIDDEN"
	CodeWebhookEndpointLimit    Code = "WEBHOOK_ENDPOINT_LIMIT"
	CodeWebhookEndpointDisabled Code = "WEBHOOK_ENDPOINT_DISABLED"
)

// Credential errors (partner credentials and consumer keys).
const (
	// CodeCredentialInUse: the change would disable the credential that
	// signed the request, locking the caller's back end out.
	CodeCredentialInUse Code = "CREDENTIAL_IN_USE"
	// CodeConsumerKeyExists: the partner already has a consumer key with
	// this kid.
	CodeConsumerKeyExists Code = "CONSUMER_KEY_EXISTS"
	// CodeOriginsLockout: the new allowed origins would refuse the address
	// the request came from.
	CodeOriginsLockout Code = "ALLOWED_ORIGINS_LOCKOUT"
)

// Report errors (GET /integrations/reports/{name}).
const (
	CodeReportNotFound   Code = "REPORT_NOT_FOUND"
	CodeInvalidDateRange Code = "INVALID_DATE_RANGE"
)

// Partner onboarding errors (issue 17, the platform console): like
// PARTNER_DISABLED, answered once a credential or token verified.
const (
	CodePartnerPending   Code = "PARTNER_PENDING"
	CodePartnerSuspended Code = "PARTNER_SUSPENDED"
)

// Server-side errors.
const (
	CodeInternal    Code = "INTERNAL"
	CodeUnavailable Code = "UNAVAILABLE"
	CodeTimeout     Code = "TIMEOUT"
	// CodeDatabaseUnavailable: the database could not be reached or
	// dropped the connection; nothing was changed.
	CodeDatabaseUnavailable Code = "DATABASE_UNAVAILABLE"
)

// Error is a failure the caller can act on. Message is safe to show to the
// caller: it never contains secrets, tokens or another tenant's data. Field,
// when set, names the offending input using the caller's spelling (a JSON
// field name, a header name, a query parameter).
type Error struct {
	Code    Code
	Message string
	Field   string
	// RetryAfterSeconds, when positive, tells the transport to send a
	// Retry-After header (rate limits, cooldowns, in-flight idempotency keys).
	RetryAfterSeconds int
	// Reason, when set, refines Code with which check failed (consumer
	// tokens: unknown_kid, bad_signature, missing_exp, ...). Stable like
	// codes; transports send it as `reason`.
	Reason string
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s (field %s)", e.Code, e.Message, e.Field)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// New returns an *Error with the code and a safe message.
func New(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Field returns an *Error about one named input.
func Field(code Code, field, format string, args ...any) *Error {
	return &Error{Code: code, Field: field, Message: fmt.Sprintf(format, args...)}
}

// As finds the *Error in err's chain. It returns nil when err is nil or is
// not a caller error, which the transports treat as internal.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// CodeOf returns the code in err's chain, CodeInternal for any other error,
// and "" for nil.
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	if e := As(err); e != nil {
		return e.Code
	}
	return CodeInternal
}

// Is reports whether err carries the code.
func Is(err error, code Code) bool { return CodeOf(err) == code }
