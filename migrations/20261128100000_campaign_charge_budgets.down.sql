DROP FUNCTION campaign_charge_budgets(uuid, smallint, text[], bigint[]);
