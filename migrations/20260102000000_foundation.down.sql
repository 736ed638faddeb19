DROP TABLE IF EXISTS replay_cache;
--bun:split
DROP TABLE IF EXISTS events;
--bun:split
DROP TABLE IF EXISTS users;
--bun:split
DROP TABLE IF EXISTS consumer_keys;
--bun:split
DROP TABLE IF EXISTS partner_credentials;
--bun:split
DROP TABLE IF EXISTS partners;
