ALTER TABLE partners
    DROP COLUMN jwks_description,
    DROP COLUMN jwks_disabled;
