ALTER TABLE ledger_entries DROP COLUMN breakdown;

--bun:split

ALTER TABLE bulk_job_items DROP COLUMN amount;

--bun:split

ALTER TABLE earning_rules
    DROP CONSTRAINT earning_rules_per_amount_not_variable,
    DROP COLUMN points_per_amount;

--bun:split

ALTER TABLE program_policies DROP COLUMN currency;
