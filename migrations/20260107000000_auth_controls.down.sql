DROP TABLE IF EXISTS partner_backend_tokens;
--bun:split
ALTER TABLE consumer_keys DROP COLUMN IF EXISTS updated_at;
--bun:split
ALTER TABLE partners
    DROP COLUMN IF EXISTS allowed_origins,
    DROP COLUMN IF EXISTS allowed_schemes,
    DROP COLUMN IF EXISTS rate_limit_per_minute,
    DROP COLUMN IF EXISTS rate_limit_burst,
    DROP COLUMN IF EXISTS consumer_rate_limit_per_minute,
    DROP COLUMN IF EXISTS consumer_rate_limit_burst,
    DROP COLUMN IF EXISTS jwks_url;
