DROP TABLE IF EXISTS idempotency_keys;
--bun:split
DROP TABLE IF EXISTS earning_counters;
--bun:split
DROP TABLE IF EXISTS earning_rules;
--bun:split
DROP TABLE IF EXISTS ledger_entries;
--bun:split
DROP FUNCTION IF EXISTS ledger_entries_append_only();
--bun:split
DROP TABLE IF EXISTS balances;
