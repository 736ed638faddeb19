// Package graph is the GraphQL transport of the consumer API: thin
// resolvers over the domain services, the error presenter and the server
// limits. Business rules live in internal/<domain>.
package graph

//go:generate go run ../cmd/graphgen

import (
	"time"

	"github.com/perkshq/perks/internal/catalog"
	"github.com/perkshq/perks/internal/content"
	"github.com/perkshq/perks/internal/database"
	"github.com/perkshq/perks/internal/earning"
	"github.com/perkshq/perks/internal/ledger"
	"github.com/perkshq/perks/internal/partner"
	"github.com/perkshq/perks/internal/ranking"
	"github.com/perkshq/perks/internal/referral"
	"github.com/perkshq/perks/internal/tier"
	"github.com/perkshq/perks/internal/user"
	"github.com/perkshq/perks/internal/voucher"
)

// Resolver holds the services the resolvers call.
type Resolver struct {
	DB       *database.DB
	Partners *partner.Service
	Users    *user.Service
	Ledger   *ledger.Service
	Earning  *earning.Service
	// Ranks is the leaderboard (named so it does not clash with the
	// ranking resolver method).
	Ranks   *ranking.Service
	Content *content.Service
	// CatalogSvc and VoucherSvc are named so they do not clash with the
	// catalog and vouchers resolver methods.
	CatalogSvc *catalog.Service
	VoucherSvc *voucher.Service
	// TierSvc reads tiers and a user's progress (named so it does not
	// clash with the tier resolver method).
	TierSvc *tier.Service
	// Referrals runs the referral program (codes, attribution, stats).
	Referrals *referral.Service
	Now       func() time.Time
}
