ALTER TABLE gifts DROP COLUMN min_tier;
DROP TABLE user_tiers;
DROP TRIGGER ledger_entries_tier_points ON ledger_entries;
DROP FUNCTION tier_points_track();
DROP TABLE tier_points;
DROP FUNCTION tier_window_start(text, timestamp);
DROP FUNCTION tier_period_end(text, text, timestamp);
ALTER TABLE program_policies DROP COLUMN tier_basis, DROP COLUMN tier_downgrade, DROP COLUMN tier_grace_days;
DROP TABLE tiers;
