ALTER TABLE partners DROP COLUMN IF EXISTS frame_ancestors;
