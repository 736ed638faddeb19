-- Referrals (issue 15): the partner's referral policy, one code per user,
-- and one referral per referred user. See docs/referrals.md.

CREATE TABLE referral_policies (
    partner_id uuid PRIMARY KEY REFERENCES partners (id),
    -- Off: codes and attribution still work, nothing qualifies or pays.
    enabled boolean NOT NULL DEFAULT true,
    -- '#' is one character of the readable alphabet; anything else is
    -- kept as is (upper case letters, digits, '-').
    code_pattern text NOT NULL DEFAULT '########' CHECK (code_pattern ~ '^[A-Z0-9#-]{4,32}$' AND code_pattern ~ '#{4,}'),
    -- Share link: '{code}' is replaced by the user's code.
    link_template text NOT NULL DEFAULT '' CHECK (length(link_template) <= 500),
    attribution_window_days integer NOT NULL DEFAULT 30 CHECK (attribution_window_days BETWEEN 0 AND 3650),
    -- What qualifies a referral: the referee's first earn of this action,
    -- with at least this amount (minor units) when set.
    qualify_action text NOT NULL CHECK (qualify_action ~ '^[a-z0-9][a-z0-9_.-]{0,63}$'),
    qualify_min_amount bigint CHECK (qualify_min_amount BETWEEN 0 AND 1000000000000),
    referrer_points bigint NOT NULL CHECK (referrer_points BETWEEN 0 AND 1000000000),
    referee_points bigint NOT NULL CHECK (referee_points BETWEEN 0 AND 1000000000),
    hold_days integer NOT NULL DEFAULT 0 CHECK (hold_days BETWEEN 0 AND 365),
    monthly_cap integer CHECK (monthly_cap BETWEEN 1 AND 1000000),
    lifetime_cap integer CHECK (lifetime_cap BETWEEN 1 AND 1000000),
    velocity_limit integer CHECK (velocity_limit BETWEEN 1 AND 1000000),
    velocity_window_minutes integer NOT NULL DEFAULT 60 CHECK (velocity_window_minutes BETWEEN 1 AND 43200),
    updated_at timestamptz NOT NULL
);

CREATE TABLE referral_codes (
    partner_id uuid NOT NULL,
    user_id uuid NOT NULL,
    -- Stored upper case: codes are case-insensitive.
    code text NOT NULL CHECK (code ~ '^[A-Z0-9_-]{3,64}$'),
    created_at timestamptz NOT NULL,
    -- The incremental export follows codes: a new or changed code moves it.
    xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
    PRIMARY KEY (partner_id, user_id),
    UNIQUE (partner_id, code),
    FOREIGN KEY (partner_id, user_id) REFERENCES users (partner_id, id) ON DELETE CASCADE
);

CREATE TABLE referrals (
    partner_id uuid NOT NULL,
    id bigint GENERATED ALWAYS AS IDENTITY,
    referrer_id uuid NOT NULL,
    referee_id uuid NOT NULL,
    code text NOT NULL,
    -- How the referee was attributed: 'api' (referredBy on the upsert) or
    -- 'app' (applyReferralCode).
    source text NOT NULL CHECK (source IN ('api', 'app')),
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'qualified', 'rewarded', 'cancelled')),
    referrer_points bigint NOT NULL DEFAULT 0,
    referee_points bigint NOT NULL DEFAULT 0,
    -- The referrer's reward was withheld by a cap.
    capped boolean NOT NULL DEFAULT false,
    qualifying_entry_id bigint,
    hold_until timestamptz,
    created_at timestamptz NOT NULL,
    qualified_at timestamptz,
    rewarded_at timestamptz,
    cancelled_at timestamptz,
    -- The incremental export follows referrals: only a status change moves it.
    xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
    PRIMARY KEY (partner_id, id),
    -- One referrer per user: the first attribution wins.
    UNIQUE (partner_id, referee_id),
    CHECK (referrer_id <> referee_id),
    FOREIGN KEY (partner_id, referrer_id) REFERENCES users (partner_id, id) ON DELETE CASCADE,
    FOREIGN KEY (partner_id, referee_id) REFERENCES users (partner_id, id) ON DELETE CASCADE
);
CREATE INDEX referrals_referrer_idx ON referrals (partner_id, referrer_id, id);
CREATE INDEX referrals_qualifying_idx ON referrals (partner_id, qualifying_entry_id) WHERE qualifying_entry_id IS NOT NULL;
CREATE INDEX referrals_hold_idx ON referrals (hold_until) WHERE status = 'qualified';

CREATE TRIGGER referral_codes_set_xid BEFORE UPDATE ON referral_codes FOR EACH ROW
    WHEN (OLD.code IS DISTINCT FROM NEW.code) EXECUTE FUNCTION set_row_xid();
CREATE INDEX referral_codes_xid_idx ON referral_codes (partner_id, xid);
CREATE TRIGGER referrals_set_xid BEFORE UPDATE ON referrals FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION set_row_xid();
CREATE INDEX referrals_xid_idx ON referrals (partner_id, xid);

-- Anonymising a user erases what could identify them here too: their code
-- (a partner may have set it from the name, seed 003's JOETESTERSON) and
-- the copies of it on the referrals they made. A revived user draws a new
-- code on first read. Erasure needs nothing: the rows cascade.
CREATE FUNCTION referral_anonymise() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM referral_codes WHERE partner_id = NEW.partner_id AND user_id = NEW.id;
    UPDATE referrals SET code = '-' WHERE partner_id = NEW.partner_id AND referrer_id = NEW.id;
    RETURN NULL;
END;
$$;
CREATE TRIGGER users_referral_anonymise AFTER UPDATE OF anonymised_at ON users FOR EACH ROW
    WHEN (OLD.anonymised_at IS NULL AND NEW.anonymised_at IS NOT NULL) EXECUTE FUNCTION referral_anonymise();
