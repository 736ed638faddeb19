package voucher

import (
	"strings"

	"github.com/perkshq/perks/internal/user"
)

// eraseClaimsSQL runs when users are erased, before their rows (and, by
// cascade, their vouchers and claim counters) go: the units of stock their
// vouchers took stay taken (their codes may have been seen), so each gift
// records how many of its vouchers were erased, and claimed_count still
// adds up (voucher.CheckInvariants). It takes the partner id and the user
// ids, like every statement of user.EraseStatements.
const eraseClaimsSQL = `WITH x AS (
		SELECT partner_id, gift_id, count(*) AS n FROM vouchers WHERE partner_id = ? AND user_id IN (?)
		GROUP BY partner_id, gift_id)
	UPDATE gifts g SET erased_claims = g.erased_claims + x.n FROM x
	WHERE g.partner_id = x.partner_id AND g.id = x.gift_id`

// init registers eraseClaimsSQL with the erase, ahead of the statement
// that deletes the users.
func init() {
	stmts := user.EraseStatements
	for i, q := range stmts {
		if strings.HasPrefix(q, "DELETE FROM users ") {
			user.EraseStatements = append(append(append([]string{}, stmts[:i]...), eraseClaimsSQL), stmts[i:]...)
			return
		}
	}
	panic("voucher: user.EraseStatements has no DELETE FROM users statement to run before")
}
