-- The export reports the gifts claimed (and their status changes) since its
-- cursor: vouchers join the xid8 change tracking. Only a status change
-- moves the xid, so a new one-time code does not re-export a voucher.
ALTER TABLE vouchers ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id();
--bun:split
CREATE TRIGGER vouchers_set_xid BEFORE UPDATE ON vouchers FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION set_row_xid();
--bun:split
CREATE INDEX vouchers_xid_idx ON vouchers (partner_id, xid);
