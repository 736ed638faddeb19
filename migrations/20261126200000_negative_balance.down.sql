-- Fails while a balance is negative: settle the debts first.
ALTER TABLE point_lots DROP COLUMN debt_paid;

--bun:split

ALTER TABLE ledger_entries
    DROP CONSTRAINT ledger_entries_balance_after_min,
    ADD CONSTRAINT ledger_entries_balance_after_check CHECK (balance_after >= 0);

--bun:split

ALTER TABLE balances
    DROP CONSTRAINT balances_points_min,
    ADD CONSTRAINT balances_points_nonnegative CHECK (points >= 0);
