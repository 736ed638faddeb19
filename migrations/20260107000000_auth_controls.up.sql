-- Issue 7: every integration style of the seeds and the partner-level
-- controls (DESIGN.md section 4).

-- Partner controls. NULL rate limits mean "the configured default"
-- (PERKS_RATE_LIMIT_*); 0 means unlimited. Empty allowed_origins means any
-- origin; empty allowed_schemes means every scheme the partner has an
-- enabled credential for.
ALTER TABLE partners
    ADD COLUMN allowed_origins text[] NOT NULL DEFAULT '{}',
    ADD COLUMN allowed_schemes text[] NOT NULL DEFAULT '{}'
        CHECK (allowed_schemes <@ ARRAY['hmac', 'ed25519', 'request_jwt']::text[]),
    ADD COLUMN rate_limit_per_minute integer CHECK (rate_limit_per_minute >= 0),
    ADD COLUMN rate_limit_burst integer CHECK (rate_limit_burst >= 0),
    ADD COLUMN consumer_rate_limit_per_minute integer CHECK (consumer_rate_limit_per_minute >= 0),
    ADD COLUMN consumer_rate_limit_burst integer CHECK (consumer_rate_limit_burst >= 0),
    -- Consumer JWT keys published by the partner (fetched and cached per replica).
    ADD COLUMN jwks_url text CHECK (jwks_url ~ '^https?://');

--bun:split

ALTER TABLE consumer_keys
    ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();

--bun:split

-- Back-end tokens of the request-JWT scheme (seed 001 auth/token). Only a
-- SHA-256 of the opaque token is stored; a token dies with its expiry or
-- when the credential that obtained it is disabled.
CREATE TABLE partner_backend_tokens (
    partner_id uuid NOT NULL REFERENCES partners (id) ON DELETE CASCADE,
    token_hash bytea NOT NULL,
    credential_id uuid NOT NULL,
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (partner_id, token_hash),
    FOREIGN KEY (partner_id, credential_id) REFERENCES partner_credentials (partner_id, id) ON DELETE CASCADE
);
CREATE INDEX partner_backend_tokens_expires_idx ON partner_backend_tokens (expires_at);
