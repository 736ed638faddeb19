-- One row per erased user (seed 001 user/delete): what must outlive the
-- user's own rows. external_id_hash is a keyed hash (HMAC under the master
-- key) of the hash users are looked up by, in a namespace of its own (never
-- the external id, and nothing else holds it), so consumer tokens issued
-- before the erasure stay refused and cannot re-create the user from their
-- claims; user_id and xid put an erasure marker in the incremental export
-- (internal/export).
CREATE TABLE user_erasures (
    partner_id uuid NOT NULL REFERENCES partners (id),
    user_id uuid NOT NULL,
    external_id_hash bytea NOT NULL,
    erased_at timestamptz NOT NULL,
    xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
    PRIMARY KEY (partner_id, user_id)
);
--bun:split
CREATE INDEX user_erasures_hash_idx ON user_erasures (partner_id, external_id_hash, erased_at DESC);
--bun:split
CREATE INDEX user_erasures_xid_idx ON user_erasures (partner_id, xid);
