DROP TRIGGER partner_credentials_auth_updated ON partner_credentials;
DROP TRIGGER partner_credentials_auth_inserted ON partner_credentials;
DROP TRIGGER consumer_keys_auth_changed ON consumer_keys;
DROP TRIGGER partners_auth_changed ON partners;
DROP FUNCTION perks_partner_auth_changed();
