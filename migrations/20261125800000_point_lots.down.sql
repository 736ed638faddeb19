DROP FUNCTION ledger_consume_lots;

--bun:split

DROP TABLE lot_allocations;

--bun:split

DROP TABLE point_lots;

--bun:split

DROP INDEX ledger_entries_lot_once_idx;

--bun:split

ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_kind, DROP CONSTRAINT ledger_entries_kind_sign;

--bun:split

ALTER TABLE ledger_entries
    ADD CONSTRAINT ledger_entries_kind_check CHECK (kind IN ('earn', 'burn', 'refund', 'expire', 'adjust')),
    ADD CONSTRAINT ledger_entries_check CHECK ((kind IN ('earn', 'refund') AND points > 0) OR (kind IN ('burn', 'expire') AND points < 0) OR kind = 'adjust');

--bun:split

ALTER TABLE balances DROP COLUMN pending_points;
