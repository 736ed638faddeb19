-- Every replica keeps the partner rows, credentials and consumer keys that
-- authentication reads on each request in memory (partner.Cache). A change
-- to any of them notifies every replica, which drops its cache: the notify
-- is sent at commit, so no replica keeps serving a committed change's old
-- state for longer than the notification takes to arrive.
CREATE FUNCTION perks_partner_auth_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('perks_partner_auth', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER partners_auth_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON partners
    FOR EACH STATEMENT EXECUTE FUNCTION perks_partner_auth_changed();

CREATE TRIGGER consumer_keys_auth_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON consumer_keys
    FOR EACH STATEMENT EXECUTE FUNCTION perks_partner_auth_changed();

CREATE TRIGGER partner_credentials_auth_inserted
    AFTER INSERT OR DELETE OR TRUNCATE ON partner_credentials
    FOR EACH STATEMENT EXECUTE FUNCTION perks_partner_auth_changed();

-- Recording use (last_used_at, at most once a minute per credential) is
-- the one change that must not empty every replica's cache.
CREATE TRIGGER partner_credentials_auth_updated
    AFTER UPDATE ON partner_credentials
    FOR EACH ROW
    WHEN ((to_jsonb(OLD) - 'last_used_at') IS DISTINCT FROM (to_jsonb(NEW) - 'last_used_at'))
    EXECUTE FUNCTION perks_partner_auth_changed();
