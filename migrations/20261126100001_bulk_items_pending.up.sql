-- Multistore items stored as a job keep their pendingUntil / pending: true
-- (docs/points.md, "Pending points: hold, confirm, cancel").
ALTER TABLE bulk_job_items
    ADD COLUMN pending_until timestamptz,
    ADD COLUMN held boolean NOT NULL DEFAULT false;
