-- Program policy (issue 13): per partner, how points expire, how long they
-- stay pending, whether a reversal may take a balance below zero, and how
-- many days before expiry users are warned. A partner without a row has the
-- defaults (internal/program.Default): no expiry, no pending days, forbid,
-- warn 30 days before.
CREATE TABLE program_policies (
    partner_id uuid PRIMARY KEY REFERENCES partners (id),
    expiry_mode text NOT NULL CHECK (expiry_mode IN ('none', 'rolling', 'fixed')),
    -- rolling only: days after the points become available.
    expiry_days integer CHECK (expiry_days BETWEEN 1 AND 3650),
    expiry_round_to_month_end boolean NOT NULL DEFAULT false,
    -- fixed only: 'MM-DD' calendar dates in the partner's time zone.
    expiry_dates text[] NOT NULL DEFAULT '{}' CHECK (cardinality(expiry_dates) <= 12),
    pending_days integer NOT NULL CHECK (pending_days BETWEEN 0 AND 3650),
    negative_balance text NOT NULL CHECK (negative_balance IN ('forbid', 'allow')),
    expiry_warning_days integer NOT NULL CHECK (expiry_warning_days BETWEEN 0 AND 365),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((expiry_mode = 'rolling') = (expiry_days IS NOT NULL)),
    CHECK ((expiry_mode = 'fixed') = (cardinality(expiry_dates) > 0)),
    CHECK (expiry_mode = 'rolling' OR NOT expiry_round_to_month_end)
);

-- Earning rules may override the policy's pending and expiry days (NULL:
-- the policy applies).
ALTER TABLE earning_rules
    ADD COLUMN pending_days integer CHECK (pending_days BETWEEN 0 AND 3650),
    ADD COLUMN expiry_days integer CHECK (expiry_days BETWEEN 1 AND 3650);
