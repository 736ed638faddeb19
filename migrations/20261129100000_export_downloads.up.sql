-- export_downloads remembers the incremental exports downloaded from the
-- partner portal (Exports & jobs page): who, when, how many users, and the
-- cursor the next download starts from, so the page can offer "changes
-- since the last download". The REST export stays stateless: API clients
-- keep their cursor. Cursors are signed and bound to the partner; they hold
-- no personal data.
CREATE TABLE export_downloads (
    partner_id  uuid NOT NULL REFERENCES partners (id) ON DELETE CASCADE,
    id          bigint GENERATED ALWAYS AS IDENTITY,
    account_id  uuid,
    from_cursor text,
    next_cursor text NOT NULL,
    has_more    boolean NOT NULL,
    rows        integer NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (partner_id, id)
);
