DROP INDEX IF EXISTS merchant_credentials_merchant_idx;
ALTER TABLE merchant_credentials DROP COLUMN IF EXISTS expires_at;
DROP INDEX IF EXISTS vouchers_merchant_redeemed_idx;
ALTER TABLE vouchers DROP CONSTRAINT IF EXISTS vouchers_redeemed_by_account_needs_merchant;
ALTER TABLE vouchers DROP COLUMN IF EXISTS redeemed_by_account_id;
