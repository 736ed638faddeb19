-- Held earns (issue 13): a partner earn with `pending: true` is held until
-- the partner confirms or cancels it. Its lot is pending with no
-- available_at: `available_at <= now` is never true of NULL, so the lots
-- job (ActivateDueTx) never activates it, and the activation index
-- (available_at) WHERE pending stays as it is. A lot without a date is
-- either still held (pending) or was cancelled (remaining 0).
ALTER TABLE point_lots ALTER COLUMN available_at DROP NOT NULL;

--bun:split

ALTER TABLE point_lots ADD CONSTRAINT point_lots_held
    CHECK (available_at IS NOT NULL OR pending OR remaining = 0);

--bun:split

-- A cancel entry names its lot (source_type 'lot'), like activate and
-- expire entries: once each, whatever races (ledger.CancelTx).
CREATE UNIQUE INDEX ledger_entries_lot_cancel_once_idx ON ledger_entries (partner_id, source_id)
    WHERE kind = 'cancel' AND source_type = 'lot';
