DROP INDEX IF EXISTS ledger_entries_lot_cancel_once_idx;

--bun:split

ALTER TABLE point_lots DROP CONSTRAINT IF EXISTS point_lots_held;

--bun:split

-- Held lots get a date far away: still never due.
UPDATE point_lots SET available_at = 'infinity' WHERE available_at IS NULL;

--bun:split

ALTER TABLE point_lots ALTER COLUMN available_at SET NOT NULL;
