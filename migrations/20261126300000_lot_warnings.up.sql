-- Expiry warnings (issue 13): a lot is warned (points.expiring) once, the
-- partner's expiry_warning_days before it expires. warned_at records that
-- the warning went out, set in the transaction of its event.
ALTER TABLE point_lots ADD COLUMN warned_at timestamptz;

--bun:split

-- The warning job's scan: per partner, the unwarned spendable lots by
-- expiry. A warned, drained or expired lot leaves the index, so a run reads
-- only what it will warn (plus lots past their date the lots job has not
-- expired yet). warned_at changes once per lot, so the non-HOT update it
-- causes is paid once; burns still update only remaining.
CREATE INDEX point_lots_warning_idx ON point_lots (partner_id, expires_at)
    WHERE open AND NOT pending AND expires_at IS NOT NULL AND warned_at IS NULL;
