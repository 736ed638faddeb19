// Package slot spreads one hot counter over a fixed number of rows (slots)
// so that concurrent writers of the counter update different rows:
// campaign budgets (campaign_budget_slots) and a gift's claims
// (gift_claim_slots). The tables, their locking order and their fallbacks
// stay with their owners; what both need the same way lives here: which
// slot a user starts from, and how a total is shared over the slots.
package slot

import (
	"hash/fnv"

	"github.com/google/uuid"
)

// Of is the slot, among n, a user starts from: a hash of the user, so one
// user's writes go to one slot and users spread over all of them.
func Of(userID uuid.UUID, n int) int {
	h := fnv.New32a()
	_, _ = h.Write(userID[:])
	return int(h.Sum32() % uint32(n))
}

// Share is slot i's part of total spread over n slots: total / n, plus one
// for the first total % n slots. Shares of two totals keep their order
// slot by slot (a <= b gives Share(a, i, n) <= Share(b, i, n)), so spreading
// both a budget and what was spent of it keeps every slot within its own.
func Share(total int64, i, n int) int64 {
	s := total / int64(n)
	if int64(i) < total%int64(n) {
		s++
	}
	return s
}
