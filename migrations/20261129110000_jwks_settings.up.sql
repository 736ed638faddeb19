-- A partner's JWKS URL gets what its other consumer keys have (issue 16,
-- the portal's Consumer authentication tab): a description and an on/off
-- switch. jwks_disabled (not jwks_enabled) so a row read without the
-- column, or written before it existed, keeps verifying.
ALTER TABLE partners
    ADD COLUMN jwks_description text NOT NULL DEFAULT '',
    ADD COLUMN jwks_disabled boolean NOT NULL DEFAULT false;
