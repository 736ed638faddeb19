ALTER TABLE bulk_job_items DROP COLUMN pending_until, DROP COLUMN held;
