-- Seed 003 calls exp optional. A consumer key may accept tokens without exp,
-- bounded by a maximum age from iat (then required); NULL keeps exp
-- required, the default.
ALTER TABLE consumer_keys
    ADD COLUMN no_exp_max_age_seconds integer
        CHECK (no_exp_max_age_seconds IS NULL OR no_exp_max_age_seconds > 0);
