-- Sandbox environments (issue 16): a sandbox is a partner row of its own,
-- linked to the live partner it tests for, so tenant isolation (every table
-- keyed and filtered by partner_id) keeps its data, credentials and webhooks
-- apart from the live ones with no rule of its own. One sandbox per live
-- partner; a sandbox has no sandbox.
ALTER TABLE partners ADD COLUMN sandbox_of uuid REFERENCES partners (id) ON DELETE CASCADE
    CHECK (sandbox_of <> id);
CREATE UNIQUE INDEX partners_sandbox_of ON partners (sandbox_of) WHERE sandbox_of IS NOT NULL;

-- The portal's environment switch lives in the server-side session: the
-- same sign-in acts on the live partner or on its sandbox.
ALTER TABLE account_sessions ADD COLUMN sandbox boolean NOT NULL DEFAULT false;
