-- Per-locale text of gifts and ads (issue 16): the base columns (title,
-- description, body) stay the text every client has always read; each
-- translations object maps a BCP 47 tag to the fields given in that locale,
-- for example {"fr": {"title": "Café offert"}}. A missing field falls back
-- (docs/catalog.md, "Locales"). jsonb keeps the REST and GraphQL contracts
-- as they were: an old client never sends or reads it.
ALTER TABLE gifts ADD COLUMN translations jsonb NOT NULL DEFAULT '{}'
    CHECK (jsonb_typeof(translations) = 'object');
ALTER TABLE ads ADD COLUMN translations jsonb NOT NULL DEFAULT '{}'
    CHECK (jsonb_typeof(translations) = 'object');

-- The partner's default content locale: the translation shown to a user
-- whose own locale has none, before the base text. NULL: the base text.
ALTER TABLE partners ADD COLUMN default_locale text;

-- Code uploads from the portal run as bulk jobs: one item per code, the
-- code kept until its item is processed.
ALTER TABLE bulk_jobs DROP CONSTRAINT bulk_jobs_kind_check;
ALTER TABLE bulk_jobs ADD CONSTRAINT bulk_jobs_kind_check CHECK (kind IN ('multistore', 'multidelete', 'codes'));
ALTER TABLE bulk_job_items ADD COLUMN code text;
