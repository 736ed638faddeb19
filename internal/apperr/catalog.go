package apperr

// Info describes a code for transports and for docs/errors.md: the HTTP
// status REST answers with, a short title, and what the caller should do.
type Info struct {
	Status int
	Title  string
	Action string
}

// catalog is the single list of codes. The HTTP statuses are plain integers
// so this package stays free of net/http.
var catalog = map[Code]Info{
	CodeMalformedJSON:        {400, "Malformed JSON", "Send a syntactically valid JSON document whose top level is an object."},
	CodeInvalidField:         {400, "Invalid field", "Fix the value of the field named in `field`; `detail` says what is expected."},
	CodeUnknownField:         {400, "Unknown field", "Remove the field named in `field`; it is not part of this endpoint's schema (check its spelling)."},
	CodeMissingField:         {400, "Missing field", "Send the required field named in `field`."},
	CodePayloadTooLarge:      {413, "Payload too large", "Send a smaller body (the limit is in `detail`) or split the work into several calls."},
	CodeUnsupportedMediaType: {415, "Unsupported media type", "Send `Content-Type: application/json`."},
	CodeMethodNotAllowed:     {405, "Method not allowed", "Use one of the methods in the `Allow` header."},
	CodeRouteNotFound:        {404, "Route not found", "Check the path against the API reference (`/openapi.json`)."},
	CodeBadRequest:           {400, "Bad request", "Fix the request as `detail` describes."},

	CodeQueryTooLarge:           {422, "GraphQL query too large", "Send a smaller GraphQL document: `extensions.limit` names the limit (`bytes`, `tokens`, `aliases`, `fields` counted with fragments expanded, or `repeatedFields`) and `extensions.max` its value; see docs/graphql.md."},
	CodeDepthLimitExceeded:      {422, "GraphQL depth limit exceeded", "Nest the operation less deeply (`extensions.max` levels); use several queries for deep data."},
	CodeComplexityLimitExceeded: {422, "GraphQL complexity limit exceeded", "Ask for smaller pages (`first`) or fewer lists in one operation; docs/graphql.md explains how the cost is counted."},
	CodeMutationLimitExceeded:   {422, "Too many mutations", "Send at most `extensions.max` mutation fields in one request; send the others in further requests."},

	CodeUnauthenticated:        {401, "Unauthenticated", "Send credentials: partner calls need a signature, consumer calls a bearer token."},
	CodeInvalidSignature:       {401, "Invalid signature", "Check the partner slug or API key, the secret, and that you sign the exact raw body bytes you send. Unknown partners and bad signatures get the same answer on purpose."},
	CodeTimestampOutOfRange:    {401, "Timestamp out of range", "Sign with the current Unix time; the server accepts ±300 seconds. Check the clock (NTP) of the signing host."},
	CodeSignatureReplayed:      {401, "Signature replayed", "This write was already received with this signature. To retry a write safely, send an `Idempotency-Key` header (or an earn `reference`): a retry with the same key and signature gets the stored answer. Otherwise sign a new request. Reads (GET, HEAD) are never refused as replays. A write that failed stores nothing, so resending its signature is refused even with a key; a `POST /auth/token` request JWT serves once (sign a new one)."},
	CodeTokenInvalid:           {401, "Invalid token", "The consumer token does not verify; `reason` says which check failed: `malformed`, `unsupported_alg`, `unknown_issuer`, `unknown_partner` (X-Partner-Slug), `partner_undetermined` (send `iss` or X-Partner-Slug), `unknown_kid`, `no_key`, `bad_signature`, `missing_exp`, `missing_iat`, `not_yet_valid`, `issued_in_future`, `audience`, `lifetime_too_long`, `no_subject` (see docs/auth.md). Mint a new one with a registered key."},
	CodeTokenExpired:           {401, "Token expired", "Mint a new token for the user (only the partner back end can); the webview asks the app to reopen. `reason` is `expired`, or `max_age_exceeded` for a token without exp older than its key allows."},
	CodeTokenRevoked:           {401, "Token revoked", "The user logged out everywhere, or was anonymised or erased, after this token was issued (in the same second or later); mint a new one."},
	CodeUserAnonymised:         {403, "User anonymised", "The user was anonymised by the partner. Only the partner's `POST /integrations/users` revives them."},
	CodeForbidden:              {403, "Forbidden", "The credential is valid but may not do this."},
	CodePartnerDisabled:        {403, "Partner disabled", "API access is switched off for this partner; contact the platform operator."},
	CodePartnerPending:         {403, "Partner not approved yet", "The platform operator has not approved this partner's onboarding yet: API access, consumer tokens and webhooks start once it does. Ask the platform operator (docs/admin.md)."},
	CodePartnerSuspended:       {403, "Partner suspended", "The platform operator suspended this partner: API access, consumer tokens and webhooks are stopped until it is resumed. Contact the platform operator."},
	CodeRateLimited:            {429, "Rate limited", "Wait for the number of seconds in `Retry-After`, then retry."},
	CodeIdempotencyKeyNeeded:   {400, "Idempotency key required", "Send an `Idempotency-Key` header (a unique string of up to 255 characters) on every write."},
	CodeOriginNotAllowed:       {403, "Origin not allowed", "Call from an address on the partner's allowed-origins list, or ask the platform operator to add yours (IP, CIDR or host name)."},
	CodeSchemeNotAllowed:       {403, "Scheme not allowed", "This partner may only authenticate with the schemes its operator allowed; sign with one of those (see docs/auth.md)."},
	CodeSignatureV2Required:    {401, "Signature v2 required", "This partner requires `v2=` HMAC signatures, which also cover the method and path; add a v2 entry (see docs/auth.md)."},
	CodeSignatureReused:        {401, "Signature reused", "This signature, request JWT or `jti` was already used for another request. Sign each request afresh: use HMAC `v2=` signatures (they cover the method and path), and give each request JWT a fresh `jti` or bind it with `htm` and `htu` (see docs/auth.md)."},
	CodeRequestBindingRequired: {401, "Request binding required", "This partner requires request JWTs bound to their request: add the `htm` (method) and `htu` (URL) claims (see docs/auth.md)."},
	CodeRequestBindingMismatch: {401, "Request binding mismatch", "The request JWT's `htm` or `htu` does not match this request's method or path; mint the token for the request you send."},
	CodeRequestHeadersTooLarge: {431, "Request headers too large", "Send smaller headers (the limit is in `detail`). For a large body with a request JWT, put its SHA-256 in `data_body_sha256` instead of repeating it in `data_body`."},

	CodeNotFound:     {404, "Not found", "Check the identifier; it does not exist for your partner."},
	CodeUserNotFound: {404, "User not found", "Provision the user first with `POST /integrations/users`, or check the external user id."},
	CodeConflict:     {409, "Conflict", "The resource changed concurrently; read it again and retry."},

	CodeIdempotencyKeyReused:  {422, "Idempotency key reused", "This key was used earlier with a different request body or path. Use a new key for a new request."},
	CodeIdempotencyInProgress: {409, "Idempotency key in progress", "A request with this key is still running; retry after `Retry-After` seconds to get its result."},
	CodeIdempotencyKeyInvalid: {400, "Invalid idempotency key", "Use 1 to 255 printable ASCII characters."},

	CodeInsufficientPoints:   {422, "Insufficient points", "The user's balance is too low for this; nothing was changed."},
	CodePointsOutOfRange:     {400, "Points out of range", "Send a positive whole number of points no larger than the documented maximum."},
	CodeActionNotFound:       {404, "Action not found", "Create the earning rule first (`PUT /integrations/earning-rules/{code}`) or check the code."},
	CodeActionNotAllowed:     {403, "Action not allowed", "This action cannot be triggered by the user from the app; award it from your back end."},
	CodeActionInactive:       {422, "Action inactive", "The earning rule is disabled or outside its active window."},
	CodeCooldown:             {429, "Cooldown", "The user triggered this action too recently; retry after `Retry-After` seconds."},
	CodeDailyCapReached:      {422, "Daily cap reached", "The user reached this action's daily cap (in the partner's time zone); try again tomorrow."},
	CodeLifetimeCapReached:   {422, "Lifetime cap reached", "The user reached this action's lifetime cap; it cannot be earned again."},
	CodeVariablePointsDenied: {400, "Variable points not allowed", "Omit `points`: this rule awards a fixed amount."},
	CodeAmountRequired:       {400, "Amount required", "This rule awards points per amount spent: send `amount`, a whole number of minor units (cents) of the program's currency."},
	CodeNoPointsEarned:       {422, "No points earned", "The amount is too small for the rule's rate (points are rounded down); nothing was recorded. `POST /integrations/actions?dryRun=true` shows the computation."},

	CodeEarnNotFound:        {404, "Earn not found", "No earn of yours has this reference (an earn of another partner is not found either): check the earn's `reference` (URL-escaped in the path). Nothing was changed."},
	CodeEarnFullyReversed:   {409, "Earn fully reversed", "Every point of this earn was already reversed; nothing was changed. Treat it as done."},
	CodeReversalExceedsEarn: {409, "Reversal exceeds the earn", "The reversals of an earn never sum to more than the earn: `detail` says how many points remain; reverse at most that many (or omit `points` to reverse the rest). Nothing was changed."},
	CodeEarnNotPending:      {409, "Earn not pending", "The earn was never pending, or its points are already available (confirmed, or activated on their date); to take them back use a reversal."},
	CodeEarnCancelled:       {409, "Earn cancelled", "The pending earn was cancelled; its points are gone. Earn again with a new reference."},

	CodeInvalidCondition:   {400, "Invalid condition", "Fix the campaign's `condition` (a CEL expression returning a bool) at the line and column given in `detail`; see docs/program.md for its variables."},
	CodeConditionTooCostly: {400, "Condition too costly", "Simplify the campaign's `condition`: its estimated cost (in `detail`) is above the limit; avoid nested comprehensions over lists."},

	CodeReferralCodeNotFound:      {404, "Referral code not found", "No user of this program has this referral code; check it (codes are case-insensitive). Nothing was changed."},
	CodeReferralCodeTaken:         {409, "Referral code taken", "Another user of this program already has this referral code; choose another one. Nothing was changed."},
	CodeReferralAlreadyAttributed: {409, "Already referred", "The user already has a referrer (the first attribution wins); nothing was changed."},
	CodeReferralWindowClosed:      {422, "Referral window closed", "A referral code can only be applied within the program's attribution window after the user joined (`attributionWindowDays` of the referral policy)."},
	CodeSelfReferral:              {422, "Self-referral", "A user cannot use their own referral code, nor one of a user with the same email address."},
	CodeReferralLoop:              {422, "Referral loop", "The code's owner was referred (directly or through others) by this user: referrals cannot form a loop."},

	CodeOutOfStock:       {409, "Out of stock", "The gift ran out; nothing was charged."},
	CodeLimitReached:     {422, "Limit reached", "The user already claimed this gift as many times as allowed."},
	CodeGiftUnavailable:  {422, "Gift unavailable", "The gift is retired or outside its claim window."},
	CodeNotInCountry:     {422, "Not in country", "The gift is not offered in the user's country."},
	CodeTierTooLow:       {422, "Tier too low", "The gift requires a higher tier (its `minTier`) than the user's; see docs/program.md, \"Tiers\"."},
	CodeCodesExhausted:   {409, "Codes exhausted", "The gift's code pool is empty; the partner must upload more codes. Nothing was charged."},
	CodeVoucherNotFound:  {404, "Voucher not found", "Check the voucher id or code."},
	CodeVoucherNotActive: {409, "Voucher not active", "The voucher was already redeemed, expired or cancelled."},
	CodeOTPInvalid:       {422, "Invalid OTP", "Ask the user for the current code shown in their app."},
	CodeOTPExpired:       {422, "OTP expired", "Ask the user to request a new code in their app."},
	CodeOTPLocked:        {423, "OTP locked", "Too many wrong codes: the user must request a new one."},
	CodeGiftNotFound:     {404, "Gift not found", "Check the gift id or SKU; it does not exist for your partner."},
	CodeWrongChannel:     {422, "Wrong redemption channel", "Online vouchers (gifts without merchants) are redeemed in the app with `redeemVoucher`; vouchers of gifts honoured by merchants are redeemed at a merchant with a one-time code (`requestRedemptionCode`)."},
	CodeCodeSource:       {409, "Code source mismatch", "Codes can only be uploaded to gifts whose `codeSource` is `pool`; change the gift first."},

	CodeWebhookURLForbidden:     {400, "Webhook URL forbidden", "Use an `https` URL whose host resolves to a public address; loopback, private, link-local and cloud metadata addresses are refused."},
	CodeWebhookEndpointLimit:    {422, "Webhook endpoint limit", "Delete an endpoint you no longer use, or subscribe one endpoint to several event types."},
	CodeWebhookEndpointDisabled: {409, "Webhook endpoint disabled", "Enable the endpoint (`PUT /integrations/webhook-endpoints/{id}` with `\"enabled\": true`) before replaying to it."},

	CodeCredentialInUse:   {409, "Credential in use", "This credential signed the request: disabling it, or rotating it without `keepOld`, would lock your back end out. Rotate with `keepOld: true`, switch your back end to the new credential, then disable the old one with a request signed by the new one (or use the portal). Nothing was changed."},
	CodeOriginsLockout:    {409, "Allowed origins lockout", "The allowed origins you sent would refuse the address this request came from, locking your back end out: include it (the IP, its CIDR or its host name), send the change from an allowed address, or use the portal. Nothing was changed."},
	CodeConsumerKeyExists: {409, "Consumer key exists", "You already have a consumer key with this `kid`: rotate it (`POST /integrations/consumer-keys/{kid}/rotate`) or choose another kid. Nothing was changed."},

	CodeReportNotFound:   {404, "Report not found", "Use one of the report names listed in docs/reports.md: `points`, `liability`, `active-users`, `top-gifts`, `webhooks`."},
	CodeInvalidDateRange: {400, "Invalid date range", "Send `from` and `to` as calendar days (`YYYY-MM-DD`, the partner's time zone) with `from` not after `to`, at most 366 days apart."},

	CodeInternal:            {500, "Internal error", "Retry later; if it persists, contact support with the `requestId`."},
	CodeUnavailable:         {503, "Service unavailable", "Retry later with backoff."},
	CodeTimeout:             {504, "Timeout", "Retry later; the operation did not finish in time and was rolled back."},
	CodeDatabaseUnavailable: {503, "Database unavailable", "The database could not be reached (an outage or a failover); nothing was changed. Retry after the `Retry-After` seconds, with the same `Idempotency-Key` for writes."},
}

// Lookup returns the Info of a code; unknown codes are reported as internal.
func Lookup(c Code) Info {
	if i, ok := catalog[c]; ok {
		return i
	}
	return catalog[CodeInternal]
}

// Codes returns every known code, for documentation and tests.
func Codes() map[Code]Info {
	out := make(map[Code]Info, len(catalog))
	for k, v := range catalog {
		out[k] = v
	}
	return out
}
