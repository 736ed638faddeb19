-- Campaigns (issue 14): time-boxed promotions that add points on top of an
-- earn's base points (internal/campaign). One row per partner and code; a PUT
-- replaces it and bumps version.
CREATE TABLE campaigns (
    partner_id uuid NOT NULL REFERENCES partners (id),
    code text NOT NULL CHECK (code ~ '^[a-z0-9][a-z0-9_.-]{0,63}$'),
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    description text NOT NULL DEFAULT '',
    -- The window [starts_at, ends_at); NULL: open on that side.
    starts_at timestamptz,
    ends_at timestamptz,
    -- Action codes the campaign applies to; empty: every rule.
    actions text[] NOT NULL DEFAULT '{}' CHECK (cardinality(actions) <= 100),
    -- Exactly one of: a multiplier in hundredths (200 = x2.00, the award is
    -- base x (multiplier - 1)), or a fixed bonus in points.
    multiplier_hundredths integer CHECK (multiplier_hundredths BETWEEN 101 AND 10000),
    bonus_points bigint CHECK (bonus_points BETWEEN 1 AND 1000000000),
    -- A CEL expression; '' means always.
    condition text NOT NULL DEFAULT '' CHECK (length(condition) <= 2000),
    -- The total points the campaign may award (NULL: unlimited) and what it
    -- awarded so far: spent_points only grows, under the row lock.
    budget_points bigint CHECK (budget_points BETWEEN 1 AND 1000000000),
    spent_points bigint NOT NULL DEFAULT 0 CHECK (spent_points >= 0),
    -- The most one user may get from the campaign (NULL: unlimited).
    user_cap_points bigint CHECK (user_cap_points BETWEEN 1 AND 1000000000),
    stacking text NOT NULL CHECK (stacking IN ('additive', 'bestOf')),
    enabled boolean NOT NULL DEFAULT true,
    version integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (partner_id, code),
    CHECK ((multiplier_hundredths IS NULL) <> (bonus_points IS NULL)),
    CHECK (starts_at IS NULL OR ends_at IS NULL OR starts_at < ends_at),
    CHECK (budget_points IS NULL OR spent_points <= budget_points)
);
-- campaign.ApplyTx's one read on every earn: the partner's enabled campaigns.
CREATE INDEX campaigns_enabled_idx ON campaigns (partner_id) WHERE enabled;

-- What each user got from a campaign with a per-user cap (only those: a
-- campaign without a cap writes nothing per user). Goes with the user.
CREATE TABLE campaign_user_totals (
    partner_id uuid NOT NULL,
    campaign_code text NOT NULL,
    user_id uuid NOT NULL,
    points bigint NOT NULL CHECK (points >= 0),
    PRIMARY KEY (partner_id, campaign_code, user_id),
    FOREIGN KEY (partner_id, campaign_code) REFERENCES campaigns (partner_id, code) ON DELETE CASCADE,
    FOREIGN KEY (partner_id, user_id) REFERENCES users (partner_id, id) ON DELETE CASCADE
);
CREATE INDEX campaign_user_totals_user_idx ON campaign_user_totals (partner_id, user_id);

-- Users' custom attributes (issue 14): a bounded JSON object of strings,
-- numbers and booleans, no personal data by contract, usable in campaign
-- conditions. Cleared on anonymisation; erasure deletes the row.
ALTER TABLE users ADD COLUMN attributes jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(attributes) = 'object');
ALTER TABLE users ADD CONSTRAINT users_anonymised_attributes CHECK (anonymised_at IS NULL OR attributes = '{}');
