-- campaign_charge_budgets charges several budgeted campaigns of one earn in
-- one call (one round trip instead of one per campaign): for each campaign,
-- in the order given (campaign.ApplyTx passes code order), it takes wants[i]
-- from one slot that can pay it all and that no concurrent earn holds (SKIP
-- LOCKED, looking from the user's slot s on) and, only when there is none,
-- from every slot in ascending order, waiting for them, up to wants[i]. It
-- answers what each campaign paid (0 when its budget is spent or gone).
--
-- Each campaign's first attempt runs in its own subtransaction (the BEGIN
-- ... EXCEPTION block): when it finds no slot, the block raises and is
-- rolled back, which releases any row lock it took (a row that a committed
-- earn changed since the snapshot is locked before its condition is checked
-- again, and stays locked when the check fails). So an earn waits only in
-- the all-slots pass, holding per campaign either slots it is done with or
-- an ascending prefix of the slots, and that pass cannot deadlock
-- (docs/program.md, "Budgets").
CREATE FUNCTION campaign_charge_budgets(p uuid, s smallint, codes text[], wants bigint[])
RETURNS bigint[] LANGUAGE plpgsql AS $$
DECLARE
    got bigint[] := array_fill(0::bigint, ARRAY[cardinality(codes)]);
    took bigint;
    free smallint;
BEGIN
    FOR i IN 1 .. cardinality(codes) LOOP
        CONTINUE WHEN wants[i] <= 0;
        BEGIN
            -- The first slot from the user's on that can pay it all and
            -- that no other earn holds: earns never queue on a slot here.
            SELECT slot INTO free FROM campaign_budget_slots
            WHERE partner_id = p AND code = codes[i] AND spent + wants[i] <= budget
            ORDER BY slot < s, slot LIMIT 1
            FOR NO KEY UPDATE SKIP LOCKED;
            IF FOUND THEN
                UPDATE campaign_budget_slots SET spent = spent + wants[i]
                WHERE partner_id = p AND code = codes[i] AND slot = free;
            ELSE
                RAISE EXCEPTION USING ERRCODE = 'PB001'; -- no slot can pay it all: drop any lock the search kept
            END IF;
            got[i] := wants[i];
        EXCEPTION WHEN SQLSTATE 'PB001' THEN
            -- Lock every slot in slot order, and take what is left, slot
            -- after slot, up to the award.
            WITH l AS (
                SELECT slot, budget - spent AS left_points FROM campaign_budget_slots
                WHERE partner_id = p AND code = codes[i] ORDER BY slot FOR NO KEY UPDATE
            ), t AS (
                SELECT slot, least(left_points, greatest(0, wants[i] - coalesce(sum(left_points) OVER (ORDER BY slot ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0))) AS take
                FROM l
            ), u AS (
                UPDATE campaign_budget_slots b SET spent = b.spent + t.take FROM t
                WHERE b.partner_id = p AND b.code = codes[i] AND b.slot = t.slot AND t.take > 0
                RETURNING t.take
            )
            SELECT coalesce(sum(take), 0)::bigint INTO took FROM u;
            got[i] := took;
        END;
    END LOOP;
    RETURN got;
END;
$$;
