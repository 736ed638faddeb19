-- Foundation: partners and their credentials, consumer token keys, users,
-- the domain event outbox and the signature replay cache.
--
-- Every tenant-owned table carries partner_id and leads its primary key with
-- it; cross-table references include partner_id so a row can never point at
-- another tenant's row.

CREATE TABLE partners (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    slug text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    display_name text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 200),
    logo_path text NOT NULL DEFAULT '',
    program_name text NOT NULL DEFAULT '',
    currency_name text NOT NULL DEFAULT 'points',
    -- Consumer JWTs whose iss equals this value belong to this partner.
    issuer text UNIQUE,
    -- When non-empty, consumer JWTs must carry this aud.
    audience text NOT NULL DEFAULT '',
    max_token_lifetime_seconds integer NOT NULL DEFAULT 604800 CHECK (max_token_lifetime_seconds > 0),
    timezone text NOT NULL DEFAULT 'UTC',
    api_enabled boolean NOT NULL DEFAULT true,
    require_hmac_v2 boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE partner_credentials (
    partner_id uuid NOT NULL REFERENCES partners (id) ON DELETE CASCADE,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    kind text NOT NULL CHECK (kind IN ('hmac', 'ed25519', 'request_jwt')),
    description text NOT NULL DEFAULT '',
    enabled boolean NOT NULL DEFAULT true,
    -- Shared secrets (hmac, request_jwt), sealed with AES-256-GCM under the master key.
    secret_sealed bytea,
    -- Ed25519 public key (32 bytes).
    public_key bytea,
    -- SHA-256 of the API key that names an ed25519 credential; the key itself is never stored.
    api_key_hash bytea UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    PRIMARY KEY (partner_id, id),
    CHECK (kind <> 'hmac' OR secret_sealed IS NOT NULL),
    CHECK (kind <> 'request_jwt' OR secret_sealed IS NOT NULL),
    CHECK (kind <> 'ed25519' OR (public_key IS NOT NULL AND api_key_hash IS NOT NULL))
);

-- Keys that verify consumer JWTs minted by the partner's back end.
CREATE TABLE consumer_keys (
    partner_id uuid NOT NULL REFERENCES partners (id) ON DELETE CASCADE,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    kid text NOT NULL CHECK (length(kid) BETWEEN 1 AND 200),
    description text NOT NULL DEFAULT '',
    algorithm text NOT NULL CHECK (algorithm IN ('RS256', 'ES256', 'EdDSA', 'HS256')),
    public_key_pem text,
    secret_sealed bytea,
    enabled boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (partner_id, id),
    UNIQUE (partner_id, kid),
    CHECK ((algorithm = 'HS256') = (secret_sealed IS NOT NULL)),
    CHECK ((algorithm <> 'HS256') = (public_key_pem IS NOT NULL))
);
CREATE INDEX consumer_keys_kid_idx ON consumer_keys (kid);

CREATE TABLE users (
    partner_id uuid NOT NULL REFERENCES partners (id),
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    -- Keyed hash of the partner's external user id. Lookups go through it so
    -- that anonymisation can clear external_id and still revive the same row.
    external_id_hash bytea NOT NULL,
    external_id text CHECK (length(external_id) BETWEEN 1 AND 128),
    email text,
    display_name text,
    first_name text,
    last_name text,
    locale text,
    country_code text CHECK (country_code ~ '^[A-Z]{2}$'),
    anonymised_at timestamptz,
    -- Consumer tokens issued before this instant are refused (logout everywhere).
    tokens_valid_after timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (partner_id, id),
    UNIQUE (partner_id, external_id_hash),
    CHECK (anonymised_at IS NULL OR (external_id IS NULL AND email IS NULL AND display_name IS NULL
        AND first_name IS NULL AND last_name IS NULL AND locale IS NULL AND country_code IS NULL))
);
CREATE UNIQUE INDEX users_id_idx ON users (id);

-- Domain events, written in the same transaction as the change they describe
-- (a transactional outbox). data holds ids and non-personal facts only, so
-- anonymisation never has to rewrite it.
CREATE TABLE events (
    partner_id uuid NOT NULL REFERENCES partners (id),
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    type text NOT NULL,
    user_id uuid,
    data jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (partner_id, id)
);
CREATE INDEX events_partner_created_idx ON events (partner_id, created_at, id);
CREATE INDEX events_user_idx ON events (partner_id, user_id) WHERE user_id IS NOT NULL;

-- Signatures already accepted, so each is accepted once within the skew window.
CREATE TABLE replay_cache (
    partner_id uuid NOT NULL,
    digest bytea NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (partner_id, digest)
);
CREATE INDEX replay_cache_expires_idx ON replay_cache (expires_at);
