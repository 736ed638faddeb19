-- Entry kinds of the points lifecycle's second half (issue 13):
-- reverse takes back points of an earn (a refund of the order), cancel
-- removes a held earn before it activates. Both are debits; a cancel, like
-- the pending entry it undoes, is outside the available balance's running
-- sum. See docs/points.md.
ALTER TABLE ledger_entries
    DROP CONSTRAINT ledger_entries_kind,
    DROP CONSTRAINT ledger_entries_kind_sign;

--bun:split

ALTER TABLE ledger_entries
    ADD CONSTRAINT ledger_entries_kind CHECK (kind IN ('earn', 'burn', 'refund', 'expire', 'adjust', 'pending', 'activate', 'reverse', 'cancel')),
    ADD CONSTRAINT ledger_entries_kind_sign CHECK (
        (kind IN ('earn', 'refund', 'pending', 'activate') AND points > 0)
        OR (kind IN ('burn', 'expire', 'reverse', 'cancel') AND points < 0) OR kind = 'adjust');
