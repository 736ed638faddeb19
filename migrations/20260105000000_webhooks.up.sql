-- Webhooks: per-partner endpoints, one delivery per (event, endpoint) and a
-- row per delivery attempt. Deliveries are written in the transaction of the
-- event they carry (see internal/webhook), next to their River job.

CREATE TABLE webhook_endpoints (
    partner_id uuid NOT NULL REFERENCES partners (id),
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    url text NOT NULL CHECK (length(url) BETWEEN 1 AND 2048),
    description text NOT NULL DEFAULT '' CHECK (length(description) <= 500),
    -- The event types the endpoint subscribes to; empty means every type.
    event_types text[] NOT NULL DEFAULT '{}',
    enabled boolean NOT NULL DEFAULT true,
    -- Why Perks switched the endpoint off (the receiver answered 410 Gone);
    -- null when enabled or disabled by the partner.
    disabled_reason text,
    -- Signing secrets (32 random bytes), sealed with AES-256-GCM under the
    -- master key. After a rotation the previous secret keeps signing, next to
    -- the new one, until previous_secret_expires_at.
    secret_sealed bytea NOT NULL,
    previous_secret_sealed bytea,
    previous_secret_expires_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (partner_id, id),
    CHECK ((previous_secret_sealed IS NULL) = (previous_secret_expires_at IS NULL))
);

--bun:split

CREATE TABLE webhook_deliveries (
    partner_id uuid NOT NULL,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    event_id uuid NOT NULL,
    endpoint_id uuid NOT NULL,
    event_type text NOT NULL,
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'succeeded', 'failed', 'disabled')),
    -- Bumped by every replay. Delivery jobs carry the generation they were
    -- inserted for, and a job of an older generation stands down, so a
    -- replay supersedes the retries still scheduled for the delivery.
    generation integer NOT NULL DEFAULT 0,
    attempt_count integer NOT NULL DEFAULT 0,
    last_attempt_at timestamptz,
    last_status_code integer,
    last_error text,
    next_attempt_at timestamptz,
    -- The event's time: the log is ordered and replayed by event time.
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    completed_at timestamptz,
    PRIMARY KEY (partner_id, id),
    UNIQUE (partner_id, event_id, endpoint_id),
    FOREIGN KEY (partner_id, event_id) REFERENCES events (partner_id, id) ON DELETE CASCADE,
    FOREIGN KEY (partner_id, endpoint_id) REFERENCES webhook_endpoints (partner_id, id) ON DELETE CASCADE
);

--bun:split

CREATE INDEX webhook_deliveries_created_idx ON webhook_deliveries (partner_id, created_at, id);

--bun:split

-- Every attempt to send a delivery. The request body is not stored (it is
-- rebuilt from current state at each attempt, so anonymised users never
-- reappear); the receiver's answer is, truncated to 1 KiB, and is cleared
-- when the user the event is about is anonymised.
CREATE TABLE webhook_attempts (
    partner_id uuid NOT NULL,
    delivery_id uuid NOT NULL,
    id bigint GENERATED ALWAYS AS IDENTITY,
    attempt integer NOT NULL CHECK (attempt > 0),
    attempted_at timestamptz NOT NULL,
    status_code integer,
    latency_ms integer NOT NULL CHECK (latency_ms >= 0),
    response_body text,
    error text,
    PRIMARY KEY (partner_id, delivery_id, id),
    FOREIGN KEY (partner_id, delivery_id) REFERENCES webhook_deliveries (partner_id, id) ON DELETE CASCADE
);
