-- Content: the partner's ads (seed 001 ad/bonus, ad/specials, ad/news).
CREATE TABLE ads (
    partner_id uuid NOT NULL REFERENCES partners (id),
    id text NOT NULL CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
    kind text NOT NULL CHECK (kind IN ('bonus', 'special', 'news')),
    title text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    body text NOT NULL DEFAULT '',
    image_url text,
    link_url text,
    -- A bonus ad may offer an earning rule the user can trigger from the app.
    action_code text,
    priority integer NOT NULL DEFAULT 0,
    visible_from timestamptz,
    visible_until timestamptz,
    -- Empty means every country.
    countries text[] NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (partner_id, id),
    FOREIGN KEY (partner_id, action_code) REFERENCES earning_rules (partner_id, code),
    CHECK (visible_until IS NULL OR visible_from IS NULL OR visible_until > visible_from)
);
CREATE INDEX ads_listing_idx ON ads (partner_id, kind, priority DESC, id);
