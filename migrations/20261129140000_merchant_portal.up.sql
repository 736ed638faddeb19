-- The merchant portal (issue 17).
--
-- A merchant account's realm id is a merchant id. merchants' key is
-- (partner_id, id), so one merchant id under several partners is one shop
-- serving them all: its portal users see each partner's vouchers only
-- where that partner's gifts list it.

-- Who redeemed at the till: the operator's account (NULL for online and
-- server-to-server redemptions). Accounts are never deleted, only marked
-- removed, so the history keeps naming them.
ALTER TABLE vouchers ADD COLUMN redeemed_by_account_id uuid REFERENCES accounts (id);
ALTER TABLE vouchers ADD CONSTRAINT vouchers_redeemed_by_account_needs_merchant
    CHECK (redeemed_by_account_id IS NULL OR redeemed_by_merchant_id IS NOT NULL);
-- The merchant's redemption history by date.
CREATE INDEX vouchers_merchant_redeemed_idx ON vouchers (redeemed_by_merchant_id, redeemed_at)
    WHERE redeemed_by_merchant_id IS NOT NULL;

-- Rotation with overlap: the replaced credential keeps working until
-- expires_at, then stops authenticating (NULL: until disabled).
ALTER TABLE merchant_credentials ADD COLUMN expires_at timestamptz;
-- A merchant's credentials by merchant (the portal's API credentials page).
CREATE INDEX merchant_credentials_merchant_idx ON merchant_credentials (merchant_id);
