package graph

import (
	"context"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/google/uuid"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vikstrous/dataloadgen"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/auth"
	"github.com/perkshq/perks/internal/catalog"
	"github.com/perkshq/perks/internal/ledger"
	"github.com/perkshq/perks/internal/locale"
	"github.com/perkshq/perks/internal/merchant"
	"github.com/perkshq/perks/internal/tier"
	"github.com/perkshq/perks/internal/voucher"
)

// loaderWait is how long a loader collects keys before its one query.
// List resolvers do not depend on it: they fetch their page's keys in one
// query up front and prime the loaders (see prime), so their batches are
// exact and cost no waiting. It only batches ad-hoc loads from field
// resolvers that gqlgen runs concurrently, and it adds to their latency,
// hence short.
const loaderWait = 2 * time.Millisecond

// Loaders batch and cache the reads of one GraphQL operation for its
// user, so a page of gifts with their merchants, the user's claim counts
// and balance costs a fixed number of queries whatever the page size. They
// are bound to the authenticated user: every key is looked up within that
// user's partner (and, for vouchers and claim counts, that user).
type Loaders struct {
	Gifts         *dataloadgen.Loader[uuid.UUID, *catalog.Gift]
	GiftMerchants *dataloadgen.Loader[uuid.UUID, []merchant.Merchant]
	ClaimCounts   *dataloadgen.Loader[uuid.UUID, int]
	Vouchers      *dataloadgen.Loader[uuid.UUID, *voucher.Voucher]
	Balances      *dataloadgen.Loader[uuid.UUID, int64]
	// The points lifecycle of history entries (lifecycle.go): lots by id,
	// lots by the credit that created them, entries by id.
	Lots         *dataloadgen.Loader[int64, *ledger.Lot]
	LotsBySource *dataloadgen.Loader[int64, *ledger.Lot]
	Entries      *dataloadgen.Loader[int64, *ledger.Entry]
	// Summaries: me's pendingPoints and expiringPoints share one read.
	Summaries *dataloadgen.Loader[uuid.UUID, *ledger.Summary]
	// Tiers: the partner's tier list, for gifts' minTier; Progress: me's
	// tier and nextTier share one read (tierview.go).
	Tiers    *dataloadgen.Loader[uuid.UUID, []tier.Tier]
	Progress *dataloadgen.Loader[uuid.UUID, *tier.Progress]
	// Ranks: the user's tier ranks, for the availability of gifts with a
	// minTier (giftview.go).
	Ranks *dataloadgen.Loader[uuid.UUID, *tierRanks]

	// The batch functions behind the loaders, for priming.
	gifts     func(context.Context, []uuid.UUID) (map[uuid.UUID]*catalog.Gift, error)
	merchants func(context.Context, []uuid.UUID) (map[uuid.UUID][]merchant.Merchant, error)
	claims    func(context.Context, []uuid.UUID) (map[uuid.UUID]int, error)
	vouchers  func(context.Context, []uuid.UUID) (map[uuid.UUID]*voucher.Voucher, error)
	balances  func(context.Context, []uuid.UUID) (map[uuid.UUID]int64, error)
	ranks     func(context.Context, []uuid.UUID) (map[uuid.UUID]*tierRanks, error)
}

func newLoaders(r *Resolver, c *auth.ConsumerPrincipal) *Loaders {
	pid, uid := c.Partner.ID, c.User.ID
	db := r.DB.Bun
	l := &Loaders{
		gifts: func(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]*catalog.Gift, error) {
			return r.CatalogSvc.GiftsByIDs(ctx, db, pid, ids)
		},
		merchants: func(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID][]merchant.Merchant, error) {
			m, err := r.CatalogSvc.ShownMerchants(ctx, db, pid, ids)
			if err != nil {
				return nil, err
			}
			for _, id := range ids {
				if _, ok := m[id]; !ok {
					m[id] = nil // honoured by no merchant: an online gift
				}
			}
			return m, nil
		},
		claims: func(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]int, error) {
			m, err := r.CatalogSvc.ClaimCounts(ctx, db, pid, uid, ids)
			if err != nil {
				return nil, err
			}
			for _, id := range ids {
				m[id] += 0 // absent: none claimed
			}
			return m, nil
		},
		vouchers: func(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]*voucher.Voucher, error) {
			return r.VoucherSvc.ManyForUser(ctx, db, pid, uid, ids)
		},
		balances: func(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]int64, error) {
			out := make(map[uuid.UUID]int64, len(ids))
			for _, id := range ids { // only ever the user's own id
				b, err := r.Ledger.BalanceOf(ctx, db, pid, id)
				if err != nil {
					return nil, err
				}
				out[id] = b.Points
			}
			return out, nil
		},
		ranks: ranksOf(r, pid),
	}
	wait := dataloadgen.WithWait(loaderWait)
	l.Gifts = dataloadgen.NewMappedLoader(l.gifts, wait)
	l.GiftMerchants = dataloadgen.NewMappedLoader(l.merchants, wait)
	l.ClaimCounts = dataloadgen.NewMappedLoader(l.claims, wait)
	l.Vouchers = dataloadgen.NewMappedLoader(l.vouchers, wait)
	l.Balances = dataloadgen.NewMappedLoader(l.balances, wait)
	lifecycleLoaders(r, c, l, wait)
	l.Tiers = dataloadgen.NewMappedLoader(tierLists(r), wait)
	l.Progress = dataloadgen.NewMappedLoader(progressOf(r, pid), wait)
	l.Ranks = dataloadgen.NewMappedLoader(l.ranks, wait)
	return l
}

// prime fetches keys with the loader's own batch function in one query and
// primes the loader with the results, so the field resolvers that follow
// read from its cache. On an error nothing is primed and those resolvers
// load (and report the error) themselves.
func prime[K comparable, V any](ctx context.Context, l *dataloadgen.Loader[K, V], fetch func(context.Context, []K) (map[K]V, error), keys []K) {
	if len(keys) == 0 {
		return
	}
	got, err := fetch(ctx, keys)
	if err != nil {
		return
	}
	for k, v := range got {
		l.Prime(k, v)
	}
}

type loadersKey struct{}

// withLoaders is the AroundOperations hook that gives each operation of an
// authenticated user fresh loaders (never shared between requests: their
// caches would serve one user's data to another).
func withLoaders(r *Resolver) graphql.OperationMiddleware {
	return func(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
		if c, err := auth.ConsumerFrom(ctx); err == nil {
			ctx = context.WithValue(ctx, loadersKey{}, newLoaders(r, c))
			// Gift and ad text in the user's locale, else the partner's default.
			ctx = locale.WithPreferences(ctx, c.User.Locale, c.Partner.DefaultLocale)
		}
		return next(ctx)
	}
}

// loaders returns the operation's loaders, or the reason there is no user.
func loaders(ctx context.Context) (*Loaders, *auth.ConsumerPrincipal, error) {
	c, err := consumer(ctx)
	if err != nil {
		return nil, nil, err
	}
	l, ok := ctx.Value(loadersKey{}).(*Loaders)
	if !ok {
		return nil, nil, apperr.New(apperr.CodeInternal, "no loaders in context")
	}
	return l, c, nil
}

// nodeFields returns the names selected under edges { node { ... } } of
// the current connection field, so list resolvers prefetch only what the
// query asks for.
func nodeFields(ctx context.Context) map[string]bool { return fieldsUnder(ctx, "edges", "node") }

// selectedFields returns the names of the fields selected on the object
// the current field resolves to.
func selectedFields(ctx context.Context) map[string]bool { return fieldsUnder(ctx) }

// fieldsUnder returns the names of the fields selected under path (names
// of fields, from the current field down), fragments and aliases included.
func fieldsUnder(ctx context.Context, path ...string) map[string]bool {
	out := map[string]bool{}
	fc := graphql.GetFieldContext(ctx)
	oc := graphql.GetOperationContext(ctx)
	if fc == nil || oc == nil {
		return out
	}
	var collect func(sel ast.SelectionSet, path []string)
	collect = func(sel ast.SelectionSet, path []string) {
		for _, f := range graphql.CollectFields(oc, sel, nil) {
			switch {
			case len(path) == 0:
				out[f.Name] = true
			case f.Name == path[0]:
				collect(f.Selections, path[1:])
			}
		}
	}
	collect(fc.Field.Selections, path)
	return out
}
