DROP FUNCTION gift_take_unit(uuid, uuid, smallint, boolean);
UPDATE gifts g SET claimed_count = g.claimed_count + s.claimed, codes_available = g.codes_available - s.pool_taken
FROM (SELECT partner_id, gift_id, sum(claimed) AS claimed, sum(pool_taken) AS pool_taken FROM gift_claim_slots GROUP BY 1, 2) s
WHERE s.partner_id = g.partner_id AND s.gift_id = g.id;
DROP TABLE gift_claim_slots;
