-- Gift catalog, merchants, code pools and vouchers (issue 4).
--
-- Tenancy as everywhere: every table leads its key with partner_id and every
-- reference between tenant rows includes it.

-- Merchants honour gifts at their checkout. They belong to one partner.
CREATE TABLE merchants (
    partner_id uuid NOT NULL REFERENCES partners (id),
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    -- What partners write in a gift's merchants list.
    code text NOT NULL CHECK (code ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    enabled boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (partner_id, id),
    UNIQUE (partner_id, code)
);

-- A merchant's server-to-server credential (seed 004): an API key, of which
-- only the SHA-256 is kept, and the public half of an Ed25519 key pair the
-- platform generated (the private half was shown once).
CREATE TABLE merchant_credentials (
    partner_id uuid NOT NULL,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    merchant_id uuid NOT NULL,
    api_key_hash bytea NOT NULL CHECK (length(api_key_hash) = 32),
    public_key bytea NOT NULL CHECK (length(public_key) = 32),
    description text NOT NULL DEFAULT '',
    enabled boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    PRIMARY KEY (partner_id, id),
    FOREIGN KEY (partner_id, merchant_id) REFERENCES merchants (partner_id, id) ON DELETE CASCADE
);
-- The API key is what identifies the tenant of a merchant request, so this
-- lookup index cannot lead with partner_id.
CREATE UNIQUE INDEX merchant_credentials_api_key_idx ON merchant_credentials (api_key_hash);

CREATE TABLE gifts (
    partner_id uuid NOT NULL REFERENCES partners (id),
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    sku text NOT NULL CHECK (sku ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
    title text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    description text NOT NULL DEFAULT '',
    image_url text NOT NULL DEFAULT '',
    category text NOT NULL DEFAULT '',
    cost_points bigint NOT NULL CHECK (cost_points BETWEEN 1 AND 1000000000),
    -- Total units ever available (NULL: unlimited). What is left is
    -- stock_total - claimed_count; the CHECK below is "stock >= 0".
    stock_total integer CHECK (stock_total >= 0),
    claimed_count integer NOT NULL DEFAULT 0 CHECK (claimed_count >= 0),
    -- Vouchers of this gift deleted with their erased users: the units they
    -- took stay taken, and claimed_count = vouchers + erased_claims.
    erased_claims integer NOT NULL DEFAULT 0 CHECK (erased_claims >= 0),
    per_user_limit integer CHECK (per_user_limit >= 1),
    visible_from timestamptz,
    visible_until timestamptz,
    claimable_from timestamptz,
    claimable_until timestamptz,
    -- ISO 3166-1 alpha-2 codes; empty means every country.
    countries text[] NOT NULL DEFAULT '{}',
    code_source text NOT NULL CHECK (code_source IN ('pool', 'generated', 'none')),
    code_pattern text,
    -- Unassigned codes of the pool, kept in step with gift_codes in the
    -- transactions that upload and take codes.
    codes_available integer NOT NULL DEFAULT 0 CHECK (codes_available >= 0),
    -- NULL: vouchers never expire.
    voucher_lifetime_seconds integer CHECK (voucher_lifetime_seconds >= 60),
    refund_on_expiry boolean NOT NULL DEFAULT false,
    position integer NOT NULL DEFAULT 0,
    retired_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (partner_id, id),
    UNIQUE (partner_id, sku),
    CONSTRAINT gifts_stock_nonnegative CHECK (stock_total IS NULL OR claimed_count <= stock_total),
    CHECK ((code_source = 'generated') = (code_pattern IS NOT NULL)),
    CHECK (visible_until IS NULL OR visible_from IS NULL OR visible_until > visible_from),
    CHECK (claimable_until IS NULL OR claimable_from IS NULL OR claimable_until > claimable_from)
);
CREATE INDEX gifts_catalog_idx ON gifts (partner_id, position, sku) WHERE retired_at IS NULL;

-- Which merchants honour a gift. A gift with merchants is redeemed at a
-- merchant's checkout with a one-time code; a gift without is redeemed
-- online, in the app.
CREATE TABLE gift_merchants (
    partner_id uuid NOT NULL,
    gift_id uuid NOT NULL,
    merchant_id uuid NOT NULL,
    PRIMARY KEY (partner_id, gift_id, merchant_id),
    FOREIGN KEY (partner_id, gift_id) REFERENCES gifts (partner_id, id) ON DELETE CASCADE,
    FOREIGN KEY (partner_id, merchant_id) REFERENCES merchants (partner_id, id) ON DELETE CASCADE
);
CREATE INDEX gift_merchants_merchant_idx ON gift_merchants (partner_id, merchant_id, gift_id);

-- Every voucher code of a partner, uploaded (pool) or generated from a
-- pattern: one registry, so a code is unique per partner whatever its
-- source. assigned_at is set when a voucher takes the code; a code is never
-- handed out twice, even after the voucher is cancelled or its user erased.
CREATE TABLE gift_codes (
    partner_id uuid NOT NULL,
    code text NOT NULL CHECK (code ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{2,63}$'),
    gift_id uuid NOT NULL,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    source text NOT NULL CHECK (source IN ('pool', 'generated')),
    created_at timestamptz NOT NULL DEFAULT now(),
    assigned_at timestamptz,
    PRIMARY KEY (partner_id, code),
    FOREIGN KEY (partner_id, gift_id) REFERENCES gifts (partner_id, id) ON DELETE CASCADE
);
-- The next free pool code of a gift, first uploaded first out.
CREATE INDEX gift_codes_free_idx ON gift_codes (partner_id, gift_id, seq) WHERE assigned_at IS NULL;

CREATE TABLE vouchers (
    partner_id uuid NOT NULL,
    id uuid NOT NULL,
    -- Insertion order, for stable keyset pages.
    seq bigint GENERATED ALWAYS AS IDENTITY,
    gift_id uuid NOT NULL,
    user_id uuid NOT NULL,
    code text,
    status text NOT NULL CHECK (status IN ('claimed', 'redeemed', 'expired', 'cancelled')),
    cost_points bigint NOT NULL CHECK (cost_points >= 1),
    burn_entry_id bigint NOT NULL,
    refund_entry_id bigint,
    claimed_at timestamptz NOT NULL,
    expires_at timestamptz,
    redeemed_at timestamptz,
    redeemed_by_merchant_id uuid,
    expired_at timestamptz,
    cancelled_at timestamptz,
    cancel_reason text,
    -- The current one-time redemption code: a keyed MAC, never the digits.
    otp_mac bytea,
    otp_expires_at timestamptz,
    otp_attempts integer NOT NULL DEFAULT 0 CHECK (otp_attempts >= 0),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (partner_id, id),
    FOREIGN KEY (partner_id, gift_id) REFERENCES gifts (partner_id, id),
    FOREIGN KEY (partner_id, user_id) REFERENCES users (partner_id, id) ON DELETE CASCADE,
    FOREIGN KEY (partner_id, code) REFERENCES gift_codes (partner_id, code),
    FOREIGN KEY (partner_id, redeemed_by_merchant_id) REFERENCES merchants (partner_id, id),
    FOREIGN KEY (partner_id, burn_entry_id) REFERENCES ledger_entries (partner_id, id),
    FOREIGN KEY (partner_id, refund_entry_id) REFERENCES ledger_entries (partner_id, id),
    CHECK ((status = 'redeemed') = (redeemed_at IS NOT NULL)),
    CHECK ((status = 'expired') = (expired_at IS NOT NULL)),
    CHECK ((status = 'cancelled') = (cancelled_at IS NOT NULL)),
    CHECK (refund_entry_id IS NULL OR status IN ('cancelled', 'expired'))
);
CREATE UNIQUE INDEX vouchers_code_idx ON vouchers (partner_id, code) WHERE code IS NOT NULL;
CREATE UNIQUE INDEX vouchers_refund_idx ON vouchers (partner_id, refund_entry_id) WHERE refund_entry_id IS NOT NULL;
CREATE INDEX vouchers_user_idx ON vouchers (partner_id, user_id, seq DESC);
CREATE INDEX vouchers_gift_idx ON vouchers (partner_id, gift_id);
CREATE INDEX vouchers_due_idx ON vouchers (expires_at) WHERE status = 'claimed' AND expires_at IS NOT NULL;

-- A user's claims per gift: the row lock taken by its conditional upsert is
-- what makes per-user limits exact under concurrency.
CREATE TABLE gift_claim_counters (
    partner_id uuid NOT NULL,
    user_id uuid NOT NULL,
    gift_id uuid NOT NULL,
    claims integer NOT NULL CHECK (claims >= 0),
    PRIMARY KEY (partner_id, user_id, gift_id),
    FOREIGN KEY (partner_id, user_id) REFERENCES users (partner_id, id) ON DELETE CASCADE,
    FOREIGN KEY (partner_id, gift_id) REFERENCES gifts (partner_id, id) ON DELETE CASCADE
);

-- A voucher is refunded at most once, whatever the code path: besides the
-- guarded state transition, the ledger itself refuses a second refund entry
-- for the same source.
CREATE UNIQUE INDEX ledger_entries_refund_once_idx ON ledger_entries (partner_id, source_type, source_id)
    WHERE kind = 'refund' AND source_type IS NOT NULL;
