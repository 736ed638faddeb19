CREATE MATERIALIZED VIEW leaderboard AS
SELECT b.partner_id,
       b.user_id,
       b.lifetime_earned AS score,
       rank() OVER (PARTITION BY b.partner_id ORDER BY b.lifetime_earned DESC) AS rank,
       row_number() OVER (PARTITION BY b.partner_id ORDER BY b.lifetime_earned DESC, u.created_at, u.id) AS position,
       now() AS refreshed_at
FROM balances b
JOIN users u ON u.partner_id = b.partner_id AND u.id = b.user_id
WHERE b.lifetime_earned > 0;
--bun:split
CREATE UNIQUE INDEX leaderboard_user_idx ON leaderboard (partner_id, user_id);
--bun:split
CREATE UNIQUE INDEX leaderboard_position_idx ON leaderboard (partner_id, position);
