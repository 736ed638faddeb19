-- Rate limits shared by every replica (ratelimit.Shared): one token bucket
-- per partner and scope ('partner' for its back end, 'consumer' for its
-- users), from which replicas lease tokens. Unlogged: a bucket is cheap to
-- lose (after a crash every bucket starts full again) and its updates are
-- the hottest writes of a busy partner, so they skip the WAL; no indexed
-- column changes, so updates stay HOT. Standbys never read it.
CREATE UNLOGGED TABLE rate_limit_buckets (
    partner_id uuid NOT NULL REFERENCES partners (id) ON DELETE CASCADE,
    scope text NOT NULL CHECK (scope IN ('partner', 'consumer')),
    tokens double precision NOT NULL,
    at timestamptz NOT NULL,
    -- The tokens the last lease took (what the upsert returns).
    granted integer NOT NULL,
    PRIMARY KEY (partner_id, scope)
) WITH (fillfactor = 50);
