-- campaign_charge_budgets charges several budgeted campaigns of one earn in
-- one call (one round trip instead of one per campaign): for each campaign,
-- in the order given (campaign.ApplyTx passes code order), it takes wants[i]
-- from the user's slot with one conditional UPDATE and, only when that slot
-- cannot pay it all, from every slot in ascending order, up to wants[i]. It
-- answers what each campaign paid (0 when its budget is spent or gone).
--
-- Each campaign's slot UPDATE runs in its own subtransaction (the BEGIN ...
-- EXCEPTION block): when the slot cannot pay, the block raises and is rolled
-- back, which releases the row lock the UPDATE took (in READ COMMITTED an
-- UPDATE that waited for a concurrent writer keeps the lock of a row whose
-- re-check failed). So, as in campaign.chargeBudget before it, an earn holds
-- per campaign either its own slot alone, having finished with the campaign,
-- or an ascending prefix of the slots, and the all-slots pass cannot
-- deadlock (docs/program.md, "Budgets").
CREATE FUNCTION campaign_charge_budgets(p uuid, s smallint, codes text[], wants bigint[])
RETURNS bigint[] LANGUAGE plpgsql AS $$
DECLARE
    got bigint[] := array_fill(0::bigint, ARRAY[cardinality(codes)]);
    took bigint;
BEGIN
    FOR i IN 1 .. cardinality(codes) LOOP
        CONTINUE WHEN wants[i] <= 0;
        BEGIN
            UPDATE campaign_budget_slots SET spent = spent + wants[i]
            WHERE partner_id = p AND code = codes[i] AND slot = s AND spent + wants[i] <= budget;
            IF NOT FOUND THEN
                RAISE EXCEPTION USING ERRCODE = 'PB001'; -- the slot cannot pay: roll back its lock
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
