-- Back to the window over all of the user's open lots.
CREATE OR REPLACE FUNCTION ledger_consume_lots(p uuid, u uuid, amount bigint, entry bigint) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE got bigint;
BEGIN
    -- plpgsql, not sql: it keeps the plan across calls.
    WITH pick AS (
        SELECT l.id, l.remaining, sum(l.remaining) OVER (ORDER BY l.expires_at NULLS LAST, l.id) AS run
        FROM point_lots l
        WHERE l.partner_id = p AND l.user_id = u AND l.open AND NOT l.pending
    ), take AS (
        SELECT pick.id, least(pick.remaining, amount - (pick.run - pick.remaining)) AS pts FROM pick WHERE pick.run - pick.remaining < amount
    ), upd AS (
        UPDATE point_lots l SET remaining = l.remaining - take.pts FROM take WHERE l.partner_id = p AND l.id = take.id
    ), ins AS (
        INSERT INTO lot_allocations (partner_id, entry_id, lot_id, points) SELECT p, entry, take.id, take.pts FROM take
        RETURNING lot_allocations.points
    )
    SELECT coalesce(sum(ins.points), 0) INTO got FROM ins;
    RETURN got;
END;
$$;
