-- Portal accounts shared by the partner portal, the merchant portal and the
-- platform console (issues 16 and 17): one table, scoped by realm and the
-- realm's id (the partner or merchant; none for platform admins).
CREATE TABLE accounts (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    realm text NOT NULL CHECK (realm IN ('partner', 'merchant', 'platform')),
    realm_id uuid,
    email text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    name text NOT NULL DEFAULT '' CHECK (length(name) <= 200),
    role text NOT NULL CHECK (length(role) BETWEEN 1 AND 40),
    status text NOT NULL DEFAULT 'invited' CHECK (status IN ('invited', 'active', 'removed')),
    -- argon2id in the PHC string format; NULL until activation.
    password_hash text,
    -- TOTP secret sealed under the master key; NULL until activation.
    totp_secret_sealed bytea,
    -- Last TOTP time step accepted: a code is never accepted twice.
    totp_last_step bigint NOT NULL DEFAULT 0,
    failed_sign_ins integer NOT NULL DEFAULT 0,
    locked_until timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    activated_at timestamptz,
    CHECK ((realm = 'platform') = (realm_id IS NULL)),
    CHECK (status <> 'active' OR (password_hash IS NOT NULL AND totp_secret_sealed IS NOT NULL))
);
-- One account per address and realm: signing in needs no realm id.
CREATE UNIQUE INDEX accounts_realm_email ON accounts (realm, lower(email));
CREATE INDEX accounts_realm_id ON accounts (realm, realm_id);

-- Activation links: single use, expiring; only a SHA-256 of the token is kept.
CREATE TABLE account_activations (
    token_hash bytea PRIMARY KEY,
    account_id uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    -- The TOTP secret offered on the activation page, sealed, so the page and
    -- the form posted from it agree.
    totp_secret_sealed bytea,
    expires_at timestamptz NOT NULL,
    used_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX account_activations_account ON account_activations (account_id);

-- Server-side sessions: the cookie holds a random token, the table its SHA-256.
CREATE TABLE account_sessions (
    token_hash bytea PRIMARY KEY,
    account_id uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    csrf_token text NOT NULL,
    created_at timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX account_sessions_account ON account_sessions (account_id);

-- The audit log: every change made through a portal or the partner API.
CREATE TABLE audit_log (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    realm text NOT NULL CHECK (realm IN ('partner', 'merchant', 'platform')),
    realm_id uuid,
    at timestamptz NOT NULL,
    actor_kind text NOT NULL CHECK (actor_kind IN ('account', 'credential', 'operator')),
    actor_id text NOT NULL DEFAULT '',
    actor_label text NOT NULL DEFAULT '',
    action text NOT NULL CHECK (length(action) BETWEEN 1 AND 200),
    target text NOT NULL DEFAULT '',
    before jsonb,
    after jsonb
);
CREATE INDEX audit_log_realm ON audit_log (realm, realm_id, id DESC);
