ALTER TABLE consumer_keys DROP COLUMN no_exp_max_age_seconds;
