-- Partner reports (issue 16, Overview): daily figures of the ledger kept by
-- statement-level triggers on ledger_entries, so a report over a year reads
-- a few thousand rows instead of millions of entries. See docs/reports.md.
--
-- Days are the partner's calendar days (partners.timezone when the entry is
-- written). The triggers never update a shared row: every statement appends
-- its per-day sums to report_deltas (a heap without index, cheap to
-- append, no row lock that concurrent writers of one partner would queue
-- on); report.FoldWorker folds them into report_days every minute,
-- and readers add the few deltas not yet folded, so reports are exact.

-- kind is a report kind: the entry kind, except adjust split by sign
-- (adjust_up, adjust_down), reverse of a still-pending earn (reverse_pending),
-- erased (available points removed by erasing users, negative), erased_pending
-- (their pending points), and active (users newly active that day: points
-- holds the count); webhook_succeeded and webhook_failed count webhook
-- delivery attempts (points holds the count), from webhook_attempts.
CREATE TABLE report_days (
    partner_id uuid NOT NULL, -- no foreign key: derived, and the fold must never fail on it
    day date NOT NULL,
    kind text NOT NULL,
    points bigint NOT NULL,
    entries bigint NOT NULL,
    PRIMARY KEY (partner_id, day, kind)
);

CREATE TABLE report_deltas (
    partner_id uuid NOT NULL,
    day date NOT NULL,
    kind text NOT NULL,
    points bigint NOT NULL,
    entries bigint NOT NULL
);

-- Who was already counted active on a day, so that a user is counted once
-- per day. Only the last days matter (entries are written "now"): the fold
-- prunes older rows, and the rows go with an erased user.
CREATE TABLE report_user_days (
    partner_id uuid NOT NULL,
    day date NOT NULL,
    user_id uuid NOT NULL,
    PRIMARY KEY (partner_id, day, user_id),
    FOREIGN KEY (partner_id, user_id) REFERENCES users (partner_id, id) ON DELETE CASCADE
);

--bun:split

-- The report kind of an entry (see report_days).
CREATE FUNCTION report_kind(kind text, points bigint, source_type text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN kind = 'adjust' AND points > 0 THEN 'adjust_up'
                WHEN kind = 'adjust' THEN 'adjust_down'
                WHEN kind = 'reverse' AND source_type = 'pending_earn' THEN 'reverse_pending'
                ELSE kind END
$$;

-- Statement-level, like tier_points_track: one pass per INSERT statement
-- whatever its rows, so set-based writers stay set-based. A user is active
-- on a day when they earn (or get a held earn) or spend.
CREATE FUNCTION report_track_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH n AS (
        SELECT e.partner_id, (e.created_at AT TIME ZONE p.timezone)::date AS day, e.user_id,
               report_kind(e.kind, e.points, e.source_type) AS kind, e.points
        FROM new_entries e JOIN partners p ON p.id = e.partner_id
    ), act AS (
        INSERT INTO report_user_days (partner_id, day, user_id)
        SELECT DISTINCT n.partner_id, n.day, n.user_id FROM n WHERE n.kind IN ('earn', 'pending', 'burn')
        -- A stable order: two statements inserting the same keys never deadlock.
        ORDER BY 1, 2, 3
        ON CONFLICT DO NOTHING
        RETURNING partner_id, day
    )
    INSERT INTO report_deltas (partner_id, day, kind, points, entries)
    SELECT n.partner_id, n.day, n.kind, sum(n.points), count(*) FROM n GROUP BY 1, 2, 3
    UNION ALL
    SELECT act.partner_id, act.day, 'active', count(*), count(*) FROM act GROUP BY 1, 2;
    RETURN NULL;
END;
$$;
CREATE TRIGGER ledger_entries_report_insert AFTER INSERT ON ledger_entries
    REFERENCING NEW TABLE AS new_entries FOR EACH STATEMENT EXECUTE FUNCTION report_track_insert();

-- Erasing users deletes their entries (the only deletion there is): the
-- history of issued and spent points stays, and the points they still held
-- leave the liability on the day of the erasure.
CREATE FUNCTION report_track_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH o AS (
        SELECT o.partner_id, (now() AT TIME ZONE p.timezone)::date AS day,
               report_kind(o.kind, o.points, o.source_type) AS kind, o.points
        FROM old_entries o JOIN partners p ON p.id = o.partner_id
    ), s AS (
        -- What the erased entries added to the spendable points (an
        -- activation moved its points from pending to spendable), and to the
        -- pending points.
        SELECT o.partner_id, o.day,
               coalesce(sum(o.points) FILTER (WHERE o.kind NOT IN ('pending', 'cancel', 'reverse_pending')), 0) AS avail,
               count(*) FILTER (WHERE o.kind NOT IN ('pending', 'cancel', 'reverse_pending')) AS avail_n,
               coalesce(sum(o.points) FILTER (WHERE o.kind IN ('pending', 'cancel', 'reverse_pending')), 0)
                   - coalesce(sum(o.points) FILTER (WHERE o.kind = 'activate'), 0) AS pend,
               count(*) FILTER (WHERE o.kind IN ('pending', 'cancel', 'reverse_pending')) AS pend_n
        FROM o GROUP BY 1, 2
    )
    INSERT INTO report_deltas (partner_id, day, kind, points, entries)
    SELECT s.partner_id, s.day, 'erased', -s.avail, s.avail_n FROM s WHERE s.avail_n > 0
    UNION ALL
    SELECT s.partner_id, s.day, 'erased_pending', -s.pend, s.pend_n FROM s WHERE s.pend_n > 0;
    RETURN NULL;
END;
$$;
CREATE TRIGGER ledger_entries_report_delete AFTER DELETE ON ledger_entries
    REFERENCING OLD TABLE AS old_entries FOR EACH STATEMENT EXECUTE FUNCTION report_track_delete();

-- Webhook delivery attempts are appended, never updated (but a scrub of
-- their response body): a statement-level trigger counts them per day, so
-- the success rate never reads the deliveries, whose status changes on
-- every attempt (an index on it would cost the delivery path HOT updates).
-- An attempt succeeded when the endpoint answered 2xx.
CREATE FUNCTION report_track_attempts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO report_deltas (partner_id, day, kind, points, entries)
    SELECT a.partner_id, (a.attempted_at AT TIME ZONE p.timezone)::date,
           CASE WHEN a.status_code BETWEEN 200 AND 299 THEN 'webhook_succeeded' ELSE 'webhook_failed' END,
           count(*), count(*)
    FROM new_attempts a JOIN partners p ON p.id = a.partner_id
    GROUP BY 1, 2, 3;
    RETURN NULL;
END;
$$;
CREATE TRIGGER webhook_attempts_report AFTER INSERT ON webhook_attempts
    REFERENCING NEW TABLE AS new_attempts FOR EACH STATEMENT EXECUTE FUNCTION report_track_attempts();

--bun:split

-- The history written before reports existed.
INSERT INTO report_days (partner_id, day, kind, points, entries)
SELECT x.partner_id, x.day, x.kind, sum(x.points), count(*)
FROM (SELECT e.partner_id, (e.created_at AT TIME ZONE p.timezone)::date AS day,
             report_kind(e.kind, e.points, e.source_type) AS kind, e.points
      FROM ledger_entries e JOIN partners p ON p.id = e.partner_id) x
GROUP BY 1, 2, 3;

INSERT INTO report_days (partner_id, day, kind, points, entries)
SELECT e.partner_id, (e.created_at AT TIME ZONE p.timezone)::date, 'active', count(DISTINCT e.user_id), count(DISTINCT e.user_id)
FROM ledger_entries e JOIN partners p ON p.id = e.partner_id
WHERE e.kind IN ('earn', 'pending', 'burn')
GROUP BY 1, 2;

INSERT INTO report_days (partner_id, day, kind, points, entries)
SELECT a.partner_id, (a.attempted_at AT TIME ZONE p.timezone)::date,
       CASE WHEN a.status_code BETWEEN 200 AND 299 THEN 'webhook_succeeded' ELSE 'webhook_failed' END,
       count(*), count(*)
FROM webhook_attempts a JOIN partners p ON p.id = a.partner_id
GROUP BY 1, 2, 3;

INSERT INTO report_user_days (partner_id, day, user_id)
SELECT DISTINCT e.partner_id, (e.created_at AT TIME ZONE p.timezone)::date, e.user_id
FROM ledger_entries e JOIN partners p ON p.id = e.partner_id
WHERE e.kind IN ('earn', 'pending', 'burn') AND e.created_at >= now() - interval '3 days';

--bun:split

-- Top gifts: claims and redemptions per partner, day and gift, kept like
-- the ledger's (deltas appended by triggers, folded by report.FoldTx), so a
-- year of claims is a few thousand rows, not every voucher.
CREATE TABLE report_gift_days (
    partner_id uuid NOT NULL, -- no foreign key: derived, and the fold must never fail on it
    day date NOT NULL,
    gift_id uuid NOT NULL,
    claims bigint NOT NULL,
    points bigint NOT NULL,
    redemptions bigint NOT NULL,
    PRIMARY KEY (partner_id, day, gift_id)
);

CREATE TABLE report_gift_deltas (
    partner_id uuid NOT NULL,
    day date NOT NULL,
    gift_id uuid NOT NULL,
    claims bigint NOT NULL,
    points bigint NOT NULL,
    redemptions bigint NOT NULL
);

--bun:split

-- Claims on the day of the claim; a voucher written already redeemed (none
-- is today, but a backfill or an import might) counts on its redemption day.
CREATE FUNCTION report_track_claims() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO report_gift_deltas (partner_id, day, gift_id, claims, points, redemptions)
    SELECT v.partner_id, (v.claimed_at AT TIME ZONE p.timezone)::date, v.gift_id, count(*), sum(v.cost_points), 0
    FROM new_vouchers v JOIN partners p ON p.id = v.partner_id GROUP BY 1, 2, 3
    UNION ALL
    SELECT v.partner_id, (v.redeemed_at AT TIME ZONE p.timezone)::date, v.gift_id, 0, 0, count(*)
    FROM new_vouchers v JOIN partners p ON p.id = v.partner_id WHERE v.redeemed_at IS NOT NULL GROUP BY 1, 2, 3;
    RETURN NULL;
END;
$$;
CREATE TRIGGER vouchers_report_claims AFTER INSERT ON vouchers
    REFERENCING NEW TABLE AS new_vouchers FOR EACH STATEMENT EXECUTE FUNCTION report_track_claims();

-- A redemption updates one voucher: a row trigger that fires only when
-- redeemed_at is set (a column list and a WHEN: OTP requests and other
-- updates of vouchers pay nothing).
CREATE FUNCTION report_track_redemption() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO report_gift_deltas (partner_id, day, gift_id, claims, points, redemptions)
    SELECT NEW.partner_id, (NEW.redeemed_at AT TIME ZONE p.timezone)::date, NEW.gift_id, 0, 0, 1
    FROM partners p WHERE p.id = NEW.partner_id;
    RETURN NULL;
END;
$$;
CREATE TRIGGER vouchers_report_redemption AFTER UPDATE OF redeemed_at ON vouchers
    FOR EACH ROW WHEN (OLD.redeemed_at IS NULL AND NEW.redeemed_at IS NOT NULL)
    EXECUTE FUNCTION report_track_redemption();

--bun:split

INSERT INTO report_gift_days (partner_id, day, gift_id, claims, points, redemptions)
SELECT partner_id, day, gift_id, sum(claims), sum(points), sum(redemptions) FROM (
    SELECT v.partner_id, (v.claimed_at AT TIME ZONE p.timezone)::date AS day, v.gift_id, 1 AS claims, v.cost_points AS points, 0 AS redemptions
    FROM vouchers v JOIN partners p ON p.id = v.partner_id
    UNION ALL
    SELECT v.partner_id, (v.redeemed_at AT TIME ZONE p.timezone)::date, v.gift_id, 0, 0, 1
    FROM vouchers v JOIN partners p ON p.id = v.partner_id WHERE v.redeemed_at IS NOT NULL
) x GROUP BY 1, 2, 3;
