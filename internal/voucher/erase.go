package voucher

import "github.com/perkshq/perks/internal/user"

// EraseClaimsStep is voucher's step of a user erase (app.EraseSteps): it
// runs before the users' rows (and, by cascade, their vouchers and claim
// counters) go. The units of stock their vouchers took stay taken (their
// codes may have been seen), so each gift records how many of its vouchers
// were erased, and claimed_count still adds up (CheckInvariants).
var EraseClaimsStep = user.EraseStep{
	Name: "voucher claims",
	SQL: `WITH x AS (
		SELECT partner_id, gift_id, count(*) AS n FROM vouchers WHERE partner_id = ? AND user_id IN (?)
		GROUP BY partner_id, gift_id)
	UPDATE gifts g SET erased_claims = g.erased_claims + x.n FROM x
	WHERE g.partner_id = x.partner_id AND g.id = x.gift_id`,
}
