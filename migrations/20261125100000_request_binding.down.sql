ALTER TABLE partners DROP COLUMN IF EXISTS require_request_binding;
--bun:split
ALTER TABLE replay_cache DROP COLUMN IF EXISTS request_hash;
