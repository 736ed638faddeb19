-- Earns that compute points (issue 14): the program's currency, rules that
-- award points per amount spent, and the breakdown of every earn.

-- The program's ISO 4217 currency (NULL: none set). Amounts of earns are
-- whole minor units of it (cents for EUR, yen for JPY).
ALTER TABLE program_policies
    ADD COLUMN currency text CHECK (currency ~ '^[A-Z]{3}$');

--bun:split

-- A per-amount rule awards floor(amount * points / points_per_amount):
-- `points` points for every `points_per_amount` minor units, kept as two
-- integers so no rate is ever a float. NULL: a fixed or variable rule.
ALTER TABLE earning_rules
    ADD COLUMN points_per_amount bigint CHECK (points_per_amount BETWEEN 1 AND 1000000000),
    ADD CONSTRAINT earning_rules_per_amount_not_variable CHECK (points_per_amount IS NULL OR NOT variable_points);

--bun:split

-- A stored multistore item keeps its amount for the job that earns it.
ALTER TABLE bulk_job_items
    ADD COLUMN amount bigint CHECK (amount BETWEEN 0 AND 2000000000);

--bun:split

-- How an earn's points were computed (base, then tier and campaign steps,
-- then caps, and the total); NULL for entries other than earns and for
-- earns written before this column. Written by the same statement as the
-- entry.
ALTER TABLE ledger_entries
    ADD COLUMN breakdown jsonb;
