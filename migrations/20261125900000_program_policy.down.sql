ALTER TABLE earning_rules DROP COLUMN expiry_days, DROP COLUMN pending_days;
DROP TABLE program_policies;
