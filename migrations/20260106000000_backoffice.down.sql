DROP INDEX IF EXISTS users_updated_idx;
--bun:split
ALTER TABLE ledger_entries DROP COLUMN IF EXISTS xid;
--bun:split
DROP TRIGGER IF EXISTS balances_set_xid ON balances;
--bun:split
ALTER TABLE balances DROP COLUMN IF EXISTS xid;
--bun:split
DROP TRIGGER IF EXISTS users_set_xid ON users;
--bun:split
ALTER TABLE users DROP COLUMN IF EXISTS xid;
--bun:split
DROP FUNCTION IF EXISTS set_row_xid();
--bun:split
DROP MATERIALIZED VIEW IF EXISTS leaderboard;
--bun:split
DROP TABLE IF EXISTS bulk_job_items;
--bun:split
DROP TABLE IF EXISTS bulk_jobs;
