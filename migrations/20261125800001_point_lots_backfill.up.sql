-- Existing balances become one available, never-expiring lot per user with
-- the whole balance (users without one yet: safe to run again).
INSERT INTO point_lots (partner_id, user_id, points, remaining, available_at, created_at, migrated_through)
SELECT b.partner_id, b.user_id, b.points, b.points, now(), now(),
       (SELECT max(e.id) FROM ledger_entries e WHERE e.partner_id = b.partner_id AND e.user_id = b.user_id)
FROM balances b
WHERE b.points > 0
  AND NOT EXISTS (SELECT 1 FROM point_lots l WHERE l.partner_id = b.partner_id AND l.user_id = b.user_id);
