DROP TRIGGER IF EXISTS vouchers_set_xid ON vouchers;
--bun:split
ALTER TABLE vouchers DROP COLUMN IF EXISTS xid;
