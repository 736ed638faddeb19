ALTER TABLE partners DROP COLUMN IF EXISTS cors_origins;
