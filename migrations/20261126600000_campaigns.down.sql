ALTER TABLE users DROP CONSTRAINT users_anonymised_attributes;
ALTER TABLE users DROP COLUMN attributes;
DROP TABLE campaign_user_totals;
DROP TABLE campaigns;
