-- Tiers (issue 14): a partner's ordered tiers, the tier policy in the
-- program policy, per-user monthly qualifying points kept by a trigger on
-- ledger_entries, and each user's current tier. See docs/program.md, "Tiers".

CREATE TABLE tiers (
    partner_id uuid NOT NULL REFERENCES partners (id),
    code text NOT NULL CHECK (code ~ '^[a-z0-9][a-z0-9_.-]{0,63}$'),
    -- 0 for the first (base) tier, then 1, 2, ...: the order of the list.
    rank integer NOT NULL CHECK (rank BETWEEN 0 AND 19),
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    -- Qualifying points needed; 0 for the base tier, strictly increasing.
    threshold bigint NOT NULL CHECK (threshold BETWEEN 0 AND 1000000000000),
    -- Earn multiplier in hundredths (150 = x1.50), exact.
    multiplier integer NOT NULL CHECK (multiplier BETWEEN 100 AND 1000),
    benefits text NOT NULL DEFAULT '' CHECK (length(benefits) <= 2000),
    PRIMARY KEY (partner_id, code),
    UNIQUE (partner_id, rank),
    CHECK ((rank = 0) = (threshold = 0))
);

ALTER TABLE program_policies
    ADD COLUMN tier_basis text NOT NULL DEFAULT 'lifetime' CHECK (tier_basis IN ('lifetime', 'rolling12', 'calendarYear')),
    ADD COLUMN tier_downgrade text NOT NULL DEFAULT 'never' CHECK (tier_downgrade IN ('never', 'periodEnd', 'immediate')),
    ADD COLUMN tier_grace_days integer NOT NULL DEFAULT 0 CHECK (tier_grace_days BETWEEN 0 AND 365);

--bun:split

-- Qualifying points per user and calendar month (UTC) of the entry's
-- created_at: earn and activate entries add, reverse entries subtract (in
-- the month of the reversal). A window is a sum of at most 12 rows.
CREATE TABLE tier_points (
    partner_id uuid NOT NULL,
    user_id uuid NOT NULL,
    month date NOT NULL,
    points bigint NOT NULL,
    PRIMARY KEY (partner_id, user_id, month),
    FOREIGN KEY (partner_id, user_id) REFERENCES users (partner_id, id) ON DELETE CASCADE
);

-- Statement-level: one upsert per INSERT statement whatever its rows, so
-- the set-based writers (EarnManyTx, ActivateDueTx) stay set-based and every
-- writer, present or future, is covered. Entries are only ever inserted
-- (append-only), so INSERT is the only event to follow.
CREATE FUNCTION tier_points_track() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tier_points AS t (partner_id, user_id, month, points)
    SELECT n.partner_id, n.user_id, date_trunc('month', n.created_at AT TIME ZONE 'UTC')::date,
           sum(CASE WHEN n.kind = 'reverse' THEN -abs(n.points) ELSE n.points END)
    FROM new_entries n
    WHERE n.kind IN ('earn', 'activate', 'reverse')
    GROUP BY 1, 2, 3
    -- A stable order: two statements locking the same rows never deadlock.
    ORDER BY 1, 2, 3
    ON CONFLICT (partner_id, user_id, month) DO UPDATE SET points = t.points + EXCLUDED.points;
    RETURN NULL;
END;
$$;
CREATE TRIGGER ledger_entries_tier_points AFTER INSERT ON ledger_entries
    REFERENCING NEW TABLE AS new_entries FOR EACH STATEMENT EXECUTE FUNCTION tier_points_track();

--bun:split

-- First month (UTC) of the qualifying window that contains month m.
CREATE FUNCTION tier_window_start(basis text, m timestamp) RETURNS timestamp
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE basis WHEN 'rolling12' THEN m - interval '11 months'
                      WHEN 'calendarYear' THEN date_trunc('year', m)
                      ELSE '-infinity'::timestamp END
$$;

-- When a tier set in month m is next reviewed (before grace): periodEnd
-- holds it for the period (12 months, or the rest of the calendar year);
-- immediate looks again when the window next slides (next month, next
-- year); lifetime windows never slide and never reaches NULL.
CREATE FUNCTION tier_period_end(basis text, downgrade text, m timestamp) RETURNS timestamp
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN downgrade = 'periodEnd' AND basis = 'rolling12' THEN m + interval '12 months'
                WHEN downgrade = 'immediate' AND basis = 'rolling12' THEN m + interval '1 month'
                WHEN downgrade IN ('periodEnd', 'immediate') AND basis = 'calendarYear' THEN date_trunc('year', m) + interval '1 year'
           END
$$;

--bun:split

-- Points earned before tiers existed count too.
INSERT INTO tier_points (partner_id, user_id, month, points)
SELECT partner_id, user_id, date_trunc('month', created_at AT TIME ZONE 'UTC')::date,
       sum(CASE WHEN kind = 'reverse' THEN -abs(points) ELSE points END)
FROM ledger_entries WHERE kind IN ('earn', 'activate', 'reverse')
GROUP BY 1, 2, 3;

--bun:split

-- A user's tier once they left the base tier (no row: the base tier).
-- rank is the tier's rank (kept in step by tier.PutTx), so that concurrent
-- writers compare against the row's latest version in one statement;
-- previous is the code before the last change (for its tier.changed event).
-- period_end closes the qualifying period that a periodEnd downgrade looks
-- back on (or when an immediate one's window next slides), review_at is
-- period_end plus the grace days then in force: when ReviewWorker looks at
-- the row again (NULL: never).
CREATE TABLE user_tiers (
    partner_id uuid NOT NULL,
    user_id uuid NOT NULL,
    code text NOT NULL,
    rank integer NOT NULL,
    previous text NOT NULL,
    since timestamptz NOT NULL,
    period_end timestamptz,
    review_at timestamptz,
    PRIMARY KEY (partner_id, user_id),
    FOREIGN KEY (partner_id, user_id) REFERENCES users (partner_id, id) ON DELETE CASCADE
);
-- Places users (us) of partner p on the tier their qualifying points give
-- at `at`: up always, down only under the immediate policy; a user who stays
-- on the base tier gets no row. Returns the moves. The comparison is in ON
-- CONFLICT's WHERE, so it is made against the latest committed row, after
-- waiting for a concurrent writer (a review): an upgrade racing a review is
-- never lost, and a stale snapshot never decides. plpgsql with a forced
-- generic plan: it runs on every earn, and planning the statement as a
-- custom plan each time costs several times running it.
CREATE FUNCTION tier_evaluate(at timestamptz, p uuid, us uuid[])
RETURNS TABLE (out_partner_id uuid, out_user_id uuid, out_previous text, out_code text, out_up boolean)
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
DECLARE
    basis text; down text; grace integer; m timestamp; lo timestamp; pe timestamp; base text;
BEGIN
    SELECT t.code INTO base FROM tiers t WHERE t.partner_id = p AND t.rank = 0;
    IF base IS NULL THEN
        RETURN; -- the partner has no tiers
    END IF;
    SELECT coalesce(pp.tier_basis, 'lifetime'), coalesce(pp.tier_downgrade, 'never'), coalesce(pp.tier_grace_days, 0)
        INTO basis, down, grace
        FROM (VALUES (1)) one (x) LEFT JOIN program_policies pp ON pp.partner_id = p;
    m := date_trunc('month', at AT TIME ZONE 'UTC');
    lo := tier_window_start(basis, m);
    pe := tier_period_end(basis, down, m);
    RETURN QUERY
    WITH q AS (
        SELECT u.id AS uid, coalesce(sum(tp.points), 0)::bigint AS pts
        FROM unnest(us) u (id)
        LEFT JOIN tier_points tp ON tp.partner_id = p AND tp.user_id = u.id AND tp.month <= m AND tp.month >= lo
        GROUP BY u.id
    ), target AS (
        SELECT q.uid, t.code AS tcode, t.rank AS trank FROM q CROSS JOIN LATERAL (
            SELECT tr.code, tr.rank FROM tiers tr WHERE tr.partner_id = p AND tr.threshold <= q.pts ORDER BY tr.rank DESC LIMIT 1
        ) t
        LEFT JOIN user_tiers x ON x.partner_id = p AND x.user_id = q.uid
        WHERE t.rank > 0 OR x.user_id IS NOT NULL
    )
    INSERT INTO user_tiers AS ut (partner_id, user_id, code, rank, previous, since, period_end, review_at)
    SELECT p, target.uid, target.tcode, target.trank, base, at, pe AT TIME ZONE 'UTC',
        (pe + make_interval(days => CASE WHEN down = 'periodEnd' THEN grace ELSE 0 END)) AT TIME ZONE 'UTC'
    FROM target
    ORDER BY target.uid
    ON CONFLICT (partner_id, user_id) DO UPDATE SET previous = ut.code, code = EXCLUDED.code, rank = EXCLUDED.rank,
        since = EXCLUDED.since, period_end = EXCLUDED.period_end, review_at = EXCLUDED.review_at
    WHERE EXCLUDED.rank > ut.rank OR (EXCLUDED.rank < ut.rank AND down = 'immediate')
    RETURNING ut.partner_id, ut.user_id, ut.previous, ut.code,
        ut.rank > coalesce((SELECT t.rank FROM tiers t WHERE t.partner_id = ut.partner_id AND t.code = ut.previous), -1);
END;
$$;

CREATE INDEX user_tiers_review_idx ON user_tiers (review_at) WHERE review_at IS NOT NULL;
-- The incremental export follows tier changes (a review's downgrade has no
-- ledger entry to carry it): only a change of code moves the xid.
ALTER TABLE user_tiers ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE TRIGGER user_tiers_set_xid BEFORE UPDATE ON user_tiers FOR EACH ROW
    WHEN (OLD.code IS DISTINCT FROM NEW.code) EXECUTE FUNCTION set_row_xid();
CREATE INDEX user_tiers_xid_idx ON user_tiers (partner_id, xid);

-- Gifts may require a minimum tier.
ALTER TABLE gifts ADD COLUMN min_tier text CHECK (min_tier ~ '^[a-z0-9][a-z0-9_.-]{0,63}$');
