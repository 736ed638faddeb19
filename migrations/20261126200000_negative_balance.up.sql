-- Reversals and negative balances (issue 13): a reversal under the program
-- policy negativeBalance = allow may take a balance below zero (a debt that
-- later credits pay first). Burns still never go below zero: their
-- statement keeps its own `points + delta >= 0` condition. The lower bound
-- mirrors the upper one, so a balance stays within JavaScript's 2^53.
ALTER TABLE balances
    DROP CONSTRAINT balances_points_nonnegative,
    ADD CONSTRAINT balances_points_min CHECK (points >= -1000000000000);

--bun:split

ALTER TABLE ledger_entries
    DROP CONSTRAINT ledger_entries_balance_after_check,
    ADD CONSTRAINT ledger_entries_balance_after_min CHECK (balance_after >= -1000000000000) NOT VALID;

--bun:split

ALTER TABLE ledger_entries VALIDATE CONSTRAINT ledger_entries_balance_after_min;

--bun:split

-- The part of a lot's points that paid a debt when it was credited (or
-- activated): those points were never spendable, so a lot holds
-- remaining = points - debt_paid - its allocations.
ALTER TABLE point_lots
    ADD COLUMN debt_paid bigint NOT NULL DEFAULT 0,
    ADD CONSTRAINT point_lots_debt_paid CHECK (debt_paid >= 0 AND remaining + debt_paid <= points) NOT VALID;

--bun:split

ALTER TABLE point_lots VALIDATE CONSTRAINT point_lots_debt_paid;
