-- Campaign budgets spread over slots (issue 14): a budgeted campaign's budget
-- is split over campaign.BudgetSlots rows, each holding its share, so that
-- concurrent earns of different users charge different rows instead of all
-- waiting on the campaign's row until they commit. campaign.ApplyTx charges
-- the earning user's slot (hash of the user % slots) with one conditional
-- UPDATE and, only when that slot cannot pay the whole award, every slot in
-- ascending order. What the campaign spent is campaigns.spent_points plus the
-- sum of its slots' spent: campaign.PutTx keeps the whole in spent_points
-- while the campaign has no budget and in the slots (spent_points 0) while it
-- has one.
CREATE TABLE campaign_budget_slots (
    partner_id uuid NOT NULL,
    code text NOT NULL,
    slot smallint NOT NULL CHECK (slot >= 0),
    budget bigint NOT NULL CHECK (budget >= 0),
    spent bigint NOT NULL DEFAULT 0 CHECK (spent >= 0 AND spent <= budget),
    PRIMARY KEY (partner_id, code, slot),
    FOREIGN KEY (partner_id, code) REFERENCES campaigns (partner_id, code) ON DELETE CASCADE
);

-- Existing budgeted campaigns: 32 slots (campaign.BudgetSlots), budget and
-- spent each spread evenly (the first slots take the remainders, so each
-- slot's spent stays within its budget), then spent_points moves to the slots.
INSERT INTO campaign_budget_slots (partner_id, code, slot, budget, spent)
SELECT c.partner_id, c.code, s,
    c.budget_points / 32 + CASE WHEN s < c.budget_points % 32 THEN 1 ELSE 0 END,
    c.spent_points / 32 + CASE WHEN s < c.spent_points % 32 THEN 1 ELSE 0 END
FROM campaigns c, generate_series(0, 31) AS s
WHERE c.budget_points IS NOT NULL;
UPDATE campaigns SET spent_points = 0 WHERE budget_points IS NOT NULL;
