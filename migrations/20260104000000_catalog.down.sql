DROP INDEX IF EXISTS ledger_entries_refund_once_idx;
--bun:split
DROP TABLE IF EXISTS gift_claim_counters;
--bun:split
DROP TABLE IF EXISTS vouchers;
--bun:split
DROP TABLE IF EXISTS gift_codes;
--bun:split
DROP TABLE IF EXISTS gift_merchants;
--bun:split
DROP TABLE IF EXISTS gifts;
--bun:split
DROP TABLE IF EXISTS merchant_credentials;
--bun:split
DROP TABLE IF EXISTS merchants;
