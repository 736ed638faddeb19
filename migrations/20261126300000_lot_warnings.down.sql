DROP INDEX IF EXISTS point_lots_warning_idx;

--bun:split

ALTER TABLE point_lots DROP COLUMN IF EXISTS warned_at;
