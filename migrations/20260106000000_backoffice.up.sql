-- Back office: bulk jobs, the leaderboard, and change tracking for the
-- incremental export.

-- Bulk jobs (multistore, multidelete). Items keep the keyed hash of the
-- external user id, never the id itself, so job data holds no personal data.
CREATE TABLE bulk_jobs (
    partner_id uuid NOT NULL REFERENCES partners (id),
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    kind text NOT NULL CHECK (kind IN ('multistore', 'multidelete')),
    state text NOT NULL CHECK (state IN ('pending', 'running', 'completed', 'failed')),
    params jsonb NOT NULL DEFAULT '{}',
    total integer NOT NULL,
    done integer NOT NULL DEFAULT 0,
    failed integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    finished_at timestamptz,
    PRIMARY KEY (partner_id, id)
);

CREATE TABLE bulk_job_items (
    partner_id uuid NOT NULL,
    job_id uuid NOT NULL,
    position integer NOT NULL,
    user_hash bytea,
    action_code text,
    points bigint,
    reference text,
    occurred_at timestamptz,
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'ok', 'error')),
    entry_id bigint,
    error_code text,
    PRIMARY KEY (partner_id, job_id, position),
    FOREIGN KEY (partner_id, job_id) REFERENCES bulk_jobs (partner_id, id) ON DELETE CASCADE
);
CREATE INDEX bulk_job_items_pending_idx ON bulk_job_items (partner_id, job_id, position) WHERE status = 'pending';
CREATE INDEX bulk_job_items_errors_idx ON bulk_job_items (partner_id, job_id, position) WHERE status = 'error';

-- The leaderboard: users ranked by lifetime points, refreshed concurrently
-- by a periodic job so that rank lookups are index lookups at any size.
-- Ties share a rank (competition ranking: 1, 2, 2, 4); within a tie, earlier
-- members come first, then by user id, so positions are deterministic.
CREATE MATERIALIZED VIEW leaderboard AS
SELECT b.partner_id,
       b.user_id,
       b.lifetime_earned AS score,
       rank() OVER (PARTITION BY b.partner_id ORDER BY b.lifetime_earned DESC) AS rank,
       row_number() OVER (PARTITION BY b.partner_id ORDER BY b.lifetime_earned DESC, u.created_at, u.id) AS position,
       now() AS refreshed_at
FROM balances b
JOIN users u ON u.partner_id = b.partner_id AND u.id = b.user_id
WHERE b.lifetime_earned > 0;
CREATE UNIQUE INDEX leaderboard_user_idx ON leaderboard (partner_id, user_id);
CREATE UNIQUE INDEX leaderboard_position_idx ON leaderboard (partner_id, position);

-- Change tracking: the id of the transaction that last wrote each row. The
-- export reads rows whose xid lies below the oldest running transaction of
-- its snapshot, so a change that commits late is never skipped and none is
-- read twice.
CREATE FUNCTION set_row_xid() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.xid := pg_current_xact_id();
    RETURN NEW;
END;
$$;

ALTER TABLE users ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE TRIGGER users_set_xid BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION set_row_xid();
CREATE INDEX users_xid_idx ON users (partner_id, xid);

ALTER TABLE balances ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE TRIGGER balances_set_xid BEFORE UPDATE ON balances FOR EACH ROW EXECUTE FUNCTION set_row_xid();
CREATE INDEX balances_xid_idx ON balances (partner_id, xid);

ALTER TABLE ledger_entries ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX ledger_entries_xid_idx ON ledger_entries (partner_id, xid);

-- User listing with filters.
CREATE INDEX users_updated_idx ON users (partner_id, updated_at, id);
