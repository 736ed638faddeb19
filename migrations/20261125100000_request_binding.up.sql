-- Replay protection remembers which request a signature (or request-JWT
-- jti) was first used for, so a repeat of the same request can be told from
-- a credential reused for another request (docs/auth.md, "Replays").
ALTER TABLE replay_cache ADD COLUMN request_hash bytea;
--bun:split
-- A partner may require request JWTs to carry htm/htu (RFC 9449 names).
ALTER TABLE partners ADD COLUMN require_request_binding boolean NOT NULL DEFAULT false;
