-- Points ledger, earning rules and the idempotency records of partner writes.

-- One balance row per user. points can never go negative, whatever the
-- application does; the upper bound refuses overflow instead of wrapping.
CREATE TABLE balances (
    partner_id uuid NOT NULL,
    user_id uuid NOT NULL,
    points bigint NOT NULL DEFAULT 0,
    lifetime_earned bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (partner_id, user_id),
    FOREIGN KEY (partner_id, user_id) REFERENCES users (partner_id, id) ON DELETE CASCADE,
    CONSTRAINT balances_points_nonnegative CHECK (points >= 0),
    CONSTRAINT balances_points_max CHECK (points <= 1000000000000),
    CONSTRAINT balances_lifetime_max CHECK (lifetime_earned BETWEEN 0 AND 1000000000000)
);

-- Append-only: rows are inserted, never updated; only erasing a user (an
-- explicit, audited operation that sets perks.erasing) deletes them.
CREATE TABLE ledger_entries (
    partner_id uuid NOT NULL,
    id bigint GENERATED ALWAYS AS IDENTITY,
    user_id uuid NOT NULL,
    kind text NOT NULL CHECK (kind IN ('earn', 'burn', 'refund', 'expire', 'adjust')),
    points bigint NOT NULL CHECK (points <> 0),
    balance_after bigint NOT NULL CHECK (balance_after >= 0),
    reason text NOT NULL DEFAULT '',
    action_code text,
    -- What caused the entry inside Perks (a voucher, a bulk job item, ...).
    source_type text,
    source_id text,
    -- The partner's own reference: an earn with a reference happens once.
    reference text,
    metadata jsonb,
    occurred_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (partner_id, id),
    FOREIGN KEY (partner_id, user_id) REFERENCES users (partner_id, id) ON DELETE CASCADE,
    CHECK ((kind IN ('earn', 'refund') AND points > 0) OR (kind IN ('burn', 'expire') AND points < 0) OR kind = 'adjust')
);
CREATE INDEX ledger_entries_user_idx ON ledger_entries (partner_id, user_id, id DESC);
CREATE UNIQUE INDEX ledger_entries_reference_idx ON ledger_entries (partner_id, reference) WHERE reference IS NOT NULL;
CREATE INDEX ledger_entries_source_idx ON ledger_entries (partner_id, source_type, source_id) WHERE source_type IS NOT NULL;

CREATE FUNCTION ledger_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('perks.erasing', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'ledger entries are append-only (% refused)', TG_OP USING ERRCODE = 'P0001';
END;
$$;
CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_entries_append_only();

-- Rules for earning points: a partner's actions.
CREATE TABLE earning_rules (
    partner_id uuid NOT NULL REFERENCES partners (id),
    code text NOT NULL CHECK (code ~ '^[a-z0-9][a-z0-9_.-]{0,63}$'),
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    description text NOT NULL DEFAULT '',
    points bigint NOT NULL CHECK (points BETWEEN 1 AND 1000000000),
    -- When true the partner may send its own amount (up to max_points).
    variable_points boolean NOT NULL DEFAULT false,
    max_points bigint CHECK (max_points BETWEEN 1 AND 1000000000),
    client_triggerable boolean NOT NULL DEFAULT false,
    lifetime_cap integer CHECK (lifetime_cap >= 1),
    daily_cap integer CHECK (daily_cap >= 1),
    cooldown_seconds integer CHECK (cooldown_seconds >= 1),
    active_from timestamptz,
    active_until timestamptz,
    enabled boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (partner_id, code),
    CHECK (active_until IS NULL OR active_from IS NULL OR active_until > active_from)
);

-- Per user and rule: how often it was earned, on which day (in the partner's
-- time zone) and when last. The row lock taken by the conditional upsert is
-- what makes caps and cooldowns exact under concurrency.
CREATE TABLE earning_counters (
    partner_id uuid NOT NULL,
    user_id uuid NOT NULL,
    code text NOT NULL,
    total integer NOT NULL,
    day date NOT NULL,
    day_count integer NOT NULL,
    last_at timestamptz NOT NULL,
    PRIMARY KEY (partner_id, user_id, code),
    FOREIGN KEY (partner_id, user_id) REFERENCES users (partner_id, id) ON DELETE CASCADE
);

-- Stored outcomes of writes, so a retried request gets the original answer
-- byte for byte. Only hashes of requests are kept, and responses carry ids,
-- never personal data.
CREATE TABLE idempotency_keys (
    partner_id uuid NOT NULL REFERENCES partners (id) ON DELETE CASCADE,
    key text NOT NULL,
    request_hash bytea NOT NULL,
    response_status integer,
    response_body bytea,
    user_id uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (partner_id, key)
);
CREATE INDEX idempotency_keys_expires_idx ON idempotency_keys (expires_at);
