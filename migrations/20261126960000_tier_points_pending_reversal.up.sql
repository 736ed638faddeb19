-- A reversal of a still-pending earn (source_type 'pending_earn') takes
-- points that never qualified (pending points count when activated): it
-- must not lower the qualifying points. Only reversals of available points
-- do. See docs/program.md, "Qualifying points".
CREATE OR REPLACE FUNCTION tier_points_track() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tier_points AS t (partner_id, user_id, month, points)
    SELECT n.partner_id, n.user_id, date_trunc('month', n.created_at AT TIME ZONE 'UTC')::date,
           sum(CASE WHEN n.kind = 'reverse' THEN -abs(n.points) ELSE n.points END)
    FROM new_entries n
    WHERE n.kind IN ('earn', 'activate')
       OR (n.kind = 'reverse' AND n.source_type IS DISTINCT FROM 'pending_earn')
    GROUP BY 1, 2, 3
    -- A stable order: two statements locking the same rows never deadlock.
    ORDER BY 1, 2, 3
    ON CONFLICT (partner_id, user_id, month) DO UPDATE SET points = t.points + EXCLUDED.points;
    RETURN NULL;
END;
$$;
