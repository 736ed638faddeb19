-- campaign_charge_budgets charges several budgeted campaigns of one earn in
-- one call (one round trip instead of one per campaign). For each campaign,
-- in the order given (campaign.ApplyTx passes code order), it takes
-- wants[i], in three steps, each only when the one before cannot:
--
--  1. from the first slot, from the user's slot s on, that can pay it all
--     and that no concurrent earn holds (SKIP LOCKED): no waiting;
--  2. from the user's own slot, waiting for it (every slot that could pay
--     is held: under heavy load, earns queue one slot each, as many queues
--     as slots);
--  3. from every slot in ascending order, locking them all and waiting, up
--     to wants[i] (no single slot can pay it: the end of a budget).
--
-- It answers what each campaign paid (0 when its budget is spent or gone).
--
-- Steps 1 and 2 run in subtransactions (the BEGIN ... EXCEPTION blocks)
-- rolled back when they fail, which releases the row locks they took: a row
-- that a concurrent earn changed is locked before its condition is checked
-- again and stays locked when the check fails. So an earn waits holding, in
-- that campaign, nothing (step 2), or an ascending prefix of the slots
-- (step 3); the slots it holds otherwise are ones it is done with. Every
-- wait goes up (campaign code, slot), and the charges cannot deadlock
-- (docs/program.md, "Budgets and per-user caps").
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
            BEGIN
                -- Every slot that could pay is held: queue on the user's
                -- own slot, holding no other slot of the campaign.
                UPDATE campaign_budget_slots SET spent = spent + wants[i]
                WHERE partner_id = p AND code = codes[i] AND slot = s AND spent + wants[i] <= budget;
                IF NOT FOUND THEN
                    RAISE EXCEPTION USING ERRCODE = 'PB002'; -- it cannot pay: drop its lock
                END IF;
                got[i] := wants[i];
            EXCEPTION WHEN SQLSTATE 'PB002' THEN
                -- Lock every slot in slot order, and take what is left,
                -- slot after slot, up to the award.
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
        END;
    END LOOP;
    RETURN got;
END;
$$;
