ALTER TABLE bulk_job_items DROP COLUMN code;
DELETE FROM bulk_jobs WHERE kind = 'codes';
ALTER TABLE bulk_jobs DROP CONSTRAINT bulk_jobs_kind_check;
ALTER TABLE bulk_jobs ADD CONSTRAINT bulk_jobs_kind_check CHECK (kind IN ('multistore', 'multidelete'));
ALTER TABLE partners DROP COLUMN default_locale;
ALTER TABLE ads DROP COLUMN translations;
ALTER TABLE gifts DROP COLUMN translations;
