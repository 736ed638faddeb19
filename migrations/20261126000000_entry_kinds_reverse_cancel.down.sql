ALTER TABLE ledger_entries
    DROP CONSTRAINT ledger_entries_kind,
    DROP CONSTRAINT ledger_entries_kind_sign;

--bun:split

ALTER TABLE ledger_entries
    ADD CONSTRAINT ledger_entries_kind CHECK (kind IN ('earn', 'burn', 'refund', 'expire', 'adjust', 'pending', 'activate')),
    ADD CONSTRAINT ledger_entries_kind_sign CHECK (
        (kind IN ('earn', 'refund', 'pending', 'activate') AND points > 0)
        OR (kind IN ('burn', 'expire') AND points < 0) OR kind = 'adjust');
