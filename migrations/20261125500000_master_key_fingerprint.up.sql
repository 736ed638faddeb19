-- The fingerprint of the master key this database is used with
-- (keyring.Fingerprint: an HMAC of the key, never the key). One row, written
-- by the first process that opens the database with a key; every later
-- process with another key is refused at startup (database.CheckMasterKey).
CREATE TABLE master_key_fingerprint (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    fingerprint bytea NOT NULL CHECK (length(fingerprint) = 32),
    recorded_at timestamptz NOT NULL DEFAULT now()
);
