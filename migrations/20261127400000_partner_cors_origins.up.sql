-- Browser origins allowed to call /graphql (CORS). Exact origins
-- (scheme://host[:port]), no wildcard: distinct from allowed_origins, which
-- lists the IPs and host names of the partner's back end.
ALTER TABLE partners
    ADD COLUMN cors_origins text[] NOT NULL DEFAULT '{}'
        CHECK (cardinality(cors_origins) <= 20);
