package model

import (
	"github.com/perkshq/perks/internal/catalog"
	"github.com/perkshq/perks/internal/merchant"
)

// Gift is a gift as the consumer API answers it: the catalog's gift with
// its text in the reader's locale, its merchants and the user's
// availability, computed for a whole page (or list) before gqlgen writes
// it (graph's giftViews). gqlgen marshals these plain fields inline; as
// resolvers, each field of each gift cost a goroutine, a field context and
// a loader lookup, most of a catalog page's execution (docs/benchmarks.md,
// "Issue 18, session 7: catalog page").
//
// Only what the operation selects is computed: the fields it does not
// select stay zero and are never written.
type Gift struct {
	*catalog.Gift
	// LocalizedTitle and LocalizedDescription are the text in the reader's
	// locale (catalog.Gift.LocalTitle): Gift.title and Gift.description.
	LocalizedTitle       string
	LocalizedDescription string
	// Redemption is MERCHANT when any merchant honours the gift, enabled
	// or not (a gift whose merchants are all disabled is still redeemed
	// at merchants), ONLINE otherwise.
	Redemption RedemptionChannel
	// Merchants are the enabled ones, in code order; never nil.
	Merchants   []*merchant.Merchant
	ClaimedByMe int
	CanClaim    bool
	// Reason is why not, when CanClaim is false.
	Reason *UnavailableReason
	// MinTierView is Gift.minTier: the tier catalog.Gift.MinTier names, or
	// nil when it names none or a tier the partner no longer has.
	MinTierView *Tier
}
