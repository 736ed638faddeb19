-- Points lots (issue 13, phase 1): every credit is a lot that burns consume
-- soonest expiry first and that expiry turns into an expire entry of
-- exactly its unconsumed remainder. See docs/points.md, "Lots".

-- Points held until their lots activate; never spendable.
ALTER TABLE balances ADD COLUMN pending_points bigint NOT NULL DEFAULT 0
    CONSTRAINT balances_pending_range CHECK (pending_points BETWEEN 0 AND 1000000000000);

--bun:split

-- New entry kinds: pending (a held earn, not part of the available balance)
-- and activate (its points becoming available).
DO $$
DECLARE c record;
BEGIN
    FOR c IN SELECT conname FROM pg_constraint
             WHERE conrelid = 'ledger_entries'::regclass AND contype = 'c' AND pg_get_constraintdef(oid) LIKE '%kind%'
    LOOP
        EXECUTE format('ALTER TABLE ledger_entries DROP CONSTRAINT %I', c.conname);
    END LOOP;
END $$;

--bun:split

ALTER TABLE ledger_entries
    ADD CONSTRAINT ledger_entries_kind CHECK (kind IN ('earn', 'burn', 'refund', 'expire', 'adjust', 'pending', 'activate')),
    ADD CONSTRAINT ledger_entries_kind_sign CHECK (
        (kind IN ('earn', 'refund', 'pending', 'activate') AND points > 0)
        OR (kind IN ('burn', 'expire') AND points < 0) OR kind = 'adjust');

--bun:split

-- An expire or activate entry names its lot (source_type 'lot'): once each.
CREATE UNIQUE INDEX ledger_entries_lot_once_idx ON ledger_entries (partner_id, kind, source_id)
    WHERE kind IN ('expire', 'activate') AND source_type = 'lot';

--bun:split

CREATE TABLE point_lots (
    partner_id uuid NOT NULL,
    id bigint GENERATED ALWAYS AS IDENTITY,
    user_id uuid NOT NULL,
    -- The credit that created the lot; NULL for the lots migrated from the
    -- balances that existed before lots.
    source_entry_id bigint,
    -- For those migrated lots: the user's last entry then. The debits up to
    -- it predate lots and have no allocations.
    migrated_through bigint,
    points bigint NOT NULL CHECK (points > 0),
    remaining bigint NOT NULL,
    -- pending lots are not spendable (their points are in
    -- balances.pending_points) until activation at available_at.
    pending boolean NOT NULL DEFAULT false,
    available_at timestamptz NOT NULL,
    expires_at timestamptz, -- NULL: never
    created_at timestamptz NOT NULL DEFAULT now(),
    -- Whether points are left. The partial indexes test it instead of
    -- remaining: a column in an index predicate makes every change of it a
    -- non-HOT update (new index entries in every index), and remaining
    -- changes on every burn, open only when the lot is drained.
    open boolean GENERATED ALWAYS AS (remaining > 0) STORED,
    PRIMARY KEY (partner_id, id),
    -- source_entry_id has no foreign key (one check less on every earn):
    -- the entry and the lot are written by the same statement and go
    -- together when the user is erased (both cascade from users).
    FOREIGN KEY (partner_id, user_id) REFERENCES users (partner_id, id) ON DELETE CASCADE,
    CONSTRAINT point_lots_remaining CHECK (remaining BETWEEN 0 AND points),
    CONSTRAINT point_lots_pending_whole CHECK (NOT pending OR remaining = points)
) WITH (fillfactor = 90);
-- FIFO by expiry: a burn reads the user's spendable lots in this order.
CREATE INDEX point_lots_fifo_idx ON point_lots (partner_id, user_id, expires_at NULLS LAST, id)
    WHERE open AND NOT pending;
-- Due scans of the jobs.
CREATE INDEX point_lots_expiry_idx ON point_lots (expires_at)
    WHERE open AND NOT pending AND expires_at IS NOT NULL;
CREATE INDEX point_lots_activation_idx ON point_lots (available_at) WHERE pending;
CREATE INDEX point_lots_source_idx ON point_lots (partner_id, source_entry_id);

--bun:split

-- Which lots a debit (burn, adjust down, expire) drew from, and how much.
CREATE TABLE lot_allocations (
    partner_id uuid NOT NULL,
    entry_id bigint NOT NULL,
    lot_id bigint NOT NULL,
    points bigint NOT NULL CHECK (points > 0),
    -- Lot first: the cascade from an erased user's lots uses it. entry_id
    -- has no foreign key (one check less on every burn): allocations are
    -- written with their entry and erased with the user's lots.
    PRIMARY KEY (partner_id, lot_id, entry_id),
    FOREIGN KEY (partner_id, lot_id) REFERENCES point_lots (partner_id, id) ON DELETE CASCADE
);

--bun:split

-- Draws amount points of a debit (entry) from the user's spendable lots,
-- soonest expiry first (never-expiring last, then oldest), records the
-- allocations and returns how much it allocated. The debit statement calls
-- it after its UPDATE of the balance row, whose lock serialises every writer
-- of the user's lots: being VOLATILE, its query takes a fresh snapshot (READ
-- COMMITTED) and so sees every lot those writers committed, which the
-- debit's own statement snapshot (taken before the lock wait) may not.
CREATE FUNCTION ledger_consume_lots(p uuid, u uuid, amount bigint, entry bigint) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE got bigint;
BEGIN
    -- plpgsql, not sql: it keeps the plan across calls.
    WITH pick AS (
        SELECT l.id, l.remaining, sum(l.remaining) OVER (ORDER BY l.expires_at NULLS LAST, l.id) AS run
        FROM point_lots l
        WHERE l.partner_id = p AND l.user_id = u AND l.open AND NOT l.pending
    ), take AS (
        SELECT pick.id, least(pick.remaining, amount - (pick.run - pick.remaining)) AS pts FROM pick WHERE pick.run - pick.remaining < amount
    ), upd AS (
        UPDATE point_lots l SET remaining = l.remaining - take.pts FROM take WHERE l.partner_id = p AND l.id = take.id
    ), ins AS (
        INSERT INTO lot_allocations (partner_id, entry_id, lot_id, points) SELECT p, entry, take.id, take.pts FROM take
        RETURNING lot_allocations.points
    )
    SELECT coalesce(sum(ins.points), 0) INTO got FROM ins;
    RETURN got;
END;
$$;
