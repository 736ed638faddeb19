ALTER TABLE account_sessions DROP COLUMN sandbox;
DELETE FROM partners WHERE sandbox_of IS NOT NULL;
DROP INDEX partners_sandbox_of;
ALTER TABLE partners DROP COLUMN sandbox_of;
