-- A gift's claims counted over slots (issue 18, claim storm): every claim
-- used to update the gift's row (claimed_count, codes_available) and hold it
-- to its commit, so the claims of one gift ran one after the other. Now a
-- claim updates one of the gift's catalog.GiftSlots rows instead:
--
--   claimed     claims counted in the slot and not yet folded into
--               gifts.claimed_count;
--   pool_taken  pool codes those claims took, not yet folded out of
--               gifts.codes_available;
--   room        units the slot may still hand out (NULL: unlimited stock).
--
-- So what a gift has issued is gifts.claimed_count + sum(claimed), its free
-- pool codes gifts.codes_available - sum(pool_taken), and for a limited gift
-- stock_total = that issued count + sum(room) (voucher.CheckInvariants).
-- catalog.PutGiftTx folds the slots back into the gift row and spreads the
-- stock left over them again, holding every slot's lock.
CREATE TABLE gift_claim_slots (
    partner_id uuid NOT NULL,
    gift_id uuid NOT NULL,
    slot smallint NOT NULL CHECK (slot >= 0),
    claimed integer NOT NULL DEFAULT 0 CHECK (claimed >= 0),
    pool_taken integer NOT NULL DEFAULT 0 CHECK (pool_taken >= 0),
    room integer CHECK (room >= 0),
    PRIMARY KEY (partner_id, gift_id, slot),
    FOREIGN KEY (partner_id, gift_id) REFERENCES gifts (partner_id, id) ON DELETE CASCADE
);

-- Existing gifts: 4 slots each (catalog.GiftSlots), the stock left spread
-- evenly (the first slots take the remainder).
INSERT INTO gift_claim_slots (partner_id, gift_id, slot, room)
SELECT g.partner_id, g.id, s,
    CASE WHEN g.stock_total IS NULL THEN NULL
         ELSE greatest(g.stock_total - g.claimed_count, 0) / 4
            + CASE WHEN s < greatest(g.stock_total - g.claimed_count, 0) % 4 THEN 1 ELSE 0 END END
FROM gifts g, generate_series(0, 3) AS s;

-- gift_take_unit takes one unit of gift g for a claim, pool telling whether
-- the claim took a pool code, and answers the gift as it stands after the
-- take (claimed_count and codes_available counting every slot), read after
-- the slot's lock was granted; no row when no unit is left. It takes the
-- unit, in three steps, each only when the one before cannot:
--
--  1. from the first slot from slot s on (s: the claiming user's hash) that
--     has room and that no concurrent claim holds (SKIP LOCKED): no wait;
--  2. from slot s, waiting for it (every slot with room is held: under a
--     storm claims queue one slot each, as many queues as slots);
--  3. from any slot with room, locking every slot in slot order, waiting:
--     the last units of a stock are handed out exactly, never refused while
--     a slot has one.
--
-- Steps 1 and 2 run in subtransactions rolled back when they find nothing,
-- which drops the lock FOR NO KEY UPDATE keeps on a row whose room a
-- concurrent claim took to 0 since the snapshot: a claim waits holding, of
-- the gift's slots, nothing (step 2) or an ascending prefix of them (step
-- 3), and claims cannot deadlock on slots (as campaign_charge_budgets). A
-- gift without slots (rows inserted by hand) takes its unit on the gift
-- row, as before.
--
-- A partner's change to the gift (catalog.PutGiftTx, Retire) locks every
-- slot: it commits either before the slot's lock is granted here, and the
-- gift answered shows it (the claim checks it again), or after the claim.
CREATE FUNCTION gift_take_unit(p uuid, g uuid, s smallint, pool boolean)
RETURNS SETOF gifts LANGUAGE plpgsql AS $$
DECLARE
    took smallint;
    r gifts;
BEGIN
    BEGIN
        SELECT slot INTO took FROM gift_claim_slots
        WHERE partner_id = p AND gift_id = g AND (room IS NULL OR room > 0)
        ORDER BY slot < s, slot LIMIT 1
        FOR NO KEY UPDATE SKIP LOCKED;
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'PG001'; -- drop any lock the search kept
        END IF;
    EXCEPTION WHEN SQLSTATE 'PG001' THEN
        BEGIN
            SELECT slot INTO took FROM gift_claim_slots
            WHERE partner_id = p AND gift_id = g AND slot = s AND (room IS NULL OR room > 0)
            FOR NO KEY UPDATE;
            IF NOT FOUND THEN
                RAISE EXCEPTION USING ERRCODE = 'PG002'; -- no room there: drop its lock
            END IF;
        EXCEPTION WHEN SQLSTATE 'PG002' THEN
            took := NULL;
        END;
    END;
    IF took IS NULL THEN
        PERFORM 1 FROM gift_claim_slots WHERE partner_id = p AND gift_id = g ORDER BY slot FOR NO KEY UPDATE;
        IF FOUND THEN
            SELECT slot INTO took FROM gift_claim_slots
            WHERE partner_id = p AND gift_id = g AND (room IS NULL OR room > 0)
            ORDER BY slot < s, slot LIMIT 1;
            IF NOT FOUND THEN
                RETURN; -- out of stock
            END IF;
        ELSE
            UPDATE gifts SET claimed_count = claimed_count + 1,
                codes_available = codes_available - CASE WHEN pool THEN 1 ELSE 0 END
            WHERE partner_id = p AND id = g AND (stock_total IS NULL OR claimed_count < stock_total);
            IF NOT FOUND THEN
                RETURN;
            END IF;
        END IF;
    END IF;
    IF took IS NOT NULL THEN
        UPDATE gift_claim_slots SET claimed = claimed + 1, room = room - 1,
            pool_taken = pool_taken + CASE WHEN pool THEN 1 ELSE 0 END
        WHERE partner_id = p AND gift_id = g AND slot = took;
    END IF;
    SELECT * INTO r FROM gifts WHERE partner_id = p AND id = g;
    SELECT r.claimed_count + coalesce(sum(c.claimed), 0), r.codes_available - coalesce(sum(c.pool_taken), 0)
    INTO r.claimed_count, r.codes_available
    FROM gift_claim_slots c WHERE c.partner_id = p AND c.gift_id = g;
    RETURN NEXT r;
END;
$$;
