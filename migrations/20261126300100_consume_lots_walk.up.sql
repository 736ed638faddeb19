-- ledger_consume_lots walks the user's spendable lots in FIFO order
-- (point_lots_fifo_idx) and stops at the first lot that covers the debit,
-- instead of a window over all of them: a burn reads the lots it draws from
-- plus none, so a user holding thousands of lots burns as fast as one
-- holding three. The writes stay one statement each for the whole debit.
-- Same contract as before (see 20261125800000_point_lots): called after the
-- debit's UPDATE of the balance row, whose lock serialises the user's lot
-- writers; VOLATILE, so its queries see what they committed.
CREATE OR REPLACE FUNCTION ledger_consume_lots(p uuid, u uuid, amount bigint, entry bigint) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    got bigint := 0;
    ids bigint[] := '{}';
    pts bigint[] := '{}';
    t bigint;
    -- A bound cursor, not FOR r IN SELECT: plpgsql plans declared cursors
    -- for fast start (cursor_tuple_fraction), so the planner takes the
    -- ordered index scan that EXIT can stop, where a plain query loop is
    -- planned for all its rows (a sort of every lot once the user has many).
    -- The LIMIT says the same: each lot holds at least one point.
    lots CURSOR FOR SELECT l.id, l.remaining FROM point_lots l
        WHERE l.partner_id = p AND l.user_id = u AND l.open AND NOT l.pending
        ORDER BY l.expires_at NULLS LAST, l.id
        LIMIT amount;
BEGIN
    IF amount <= 0 THEN
        RETURN 0;
    END IF;
    FOR r IN lots LOOP
        t := least(r.remaining, amount - got);
        ids := ids || r.id;
        pts := pts || t;
        got := got + t;
        EXIT WHEN got >= amount;
    END LOOP;
    IF got = 0 THEN
        RETURN 0;
    END IF;
    UPDATE point_lots l SET remaining = l.remaining - x.pts
    FROM unnest(ids, pts) AS x(id, pts) WHERE l.partner_id = p AND l.id = x.id;
    INSERT INTO lot_allocations (partner_id, entry_id, lot_id, points)
    SELECT p, entry, x.id, x.pts FROM unnest(ids, pts) AS x(id, pts);
    RETURN got;
END;
$$;
