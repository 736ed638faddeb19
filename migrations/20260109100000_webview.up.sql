-- Issue 8: the consumer webview. Which origins may frame a partner's
-- webview (/consumer?partner=<slug>): CSP frame-ancestors source
-- expressions ('self', https://app.example.com, https://*.example.com).
-- Empty means none ('none'), the default.
ALTER TABLE partners
    ADD COLUMN frame_ancestors text[] NOT NULL DEFAULT '{}'
        CHECK (cardinality(frame_ancestors) <= 20);
