-- Partner onboarding (issue 17, the platform console): a partner created in
-- the console starts pending and gets no API access (REST, consumer tokens,
-- webhooks) until the platform operator approves it; the operator can
-- suspend and resume it. Existing partners, and the ones the CLI and the
-- demo seed create, are active. api_enabled stays the operator's separate
-- switch: a partner is served when it is active and switched on.
ALTER TABLE partners
    ADD COLUMN status text NOT NULL DEFAULT 'active'
        CHECK (status IN ('pending', 'active', 'suspended')),
    ADD COLUMN status_changed_at timestamptz;
