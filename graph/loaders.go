package graph

import (
	"context"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/google/uuid"
	"github.com/vikstrous/dataloadgen"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/auth"
	"github.com/perkshq/perks/internal/catalog"
	"github.com/perkshq/perks/internal/merchant"
	"github.com/perkshq/perks/internal/voucher"
)

// loaderWait is how long a loader collects keys before its one query. List
// resolvers prefetch every key of their page in one go (LoadAllThunk), so
// batches do not depend on this timing; it only has to cover the field
// resolvers gqlgen runs concurrently for ad-hoc loads, and it adds to
// latency, hence short.
const loaderWait = 2 * time.Millisecond

// Loaders batch and cache the reads of one GraphQL operation for its
// user, so a page of gifts with their merchants, the user's claim counts
// and balance costs a fixed number of queries whatever the page size. They
// are bound to the authenticated user: every key is looked up within that
// user's partner (and, for vouchers, that user).
type Loaders struct {
	Gifts         *dataloadgen.Loader[uuid.UUID, *catalog.Gift]
	GiftMerchants *dataloadgen.Loader[uuid.UUID, []merchant.Merchant]
	ClaimCounts   *dataloadgen.Loader[uuid.UUID, int]
	Vouchers      *dataloadgen.Loader[uuid.UUID, *voucher.Voucher]
	Balances      *dataloadgen.Loader[uuid.UUID, int64]
}

func newLoaders(r *Resolver, c *auth.ConsumerPrincipal) *Loaders {
	pid, uid := c.Partner.ID, c.User.ID
	db := r.DB.Bun
	wait := dataloadgen.WithWait(loaderWait)
	return &Loaders{
		Gifts: dataloadgen.NewMappedLoader(func(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]*catalog.Gift, error) {
			return r.CatalogSvc.GiftsByIDs(ctx, db, pid, ids)
		}, wait),
		GiftMerchants: dataloadgen.NewMappedLoader(func(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID][]merchant.Merchant, error) {
			m, err := r.CatalogSvc.MerchantsOf(ctx, db, pid, ids)
			if err != nil {
				return nil, err
			}
			for _, id := range ids {
				if _, ok := m[id]; !ok {
					m[id] = nil
				}
			}
			return m, nil
		}, wait),
		ClaimCounts: dataloadgen.NewMappedLoader(func(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]int, error) {
			m, err := r.CatalogSvc.ClaimCounts(ctx, db, pid, uid, ids)
			if err != nil {
				return nil, err
			}
			for _, id := range ids {
				m[id] += 0 // absent: none claimed
			}
			return m, nil
		}, wait),
		Vouchers: dataloadgen.NewMappedLoader(func(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]*voucher.Voucher, error) {
			return r.VoucherSvc.ManyForUser(ctx, db, pid, uid, ids)
		}, wait),
		Balances: dataloadgen.NewLoader(func(ctx context.Context, ids []uuid.UUID) ([]int64, []error) {
			out := make([]int64, len(ids))
			errs := make([]error, len(ids))
			for i, id := range ids { // only ever the user's own id
				b, err := r.Ledger.BalanceOf(ctx, db, pid, id)
				if err != nil {
					errs[i] = err
					continue
				}
				out[i] = b.Points
			}
			return out, errs
		}, wait),
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
func nodeFields(ctx context.Context) map[string]bool {
	out := map[string]bool{}
	fc := graphql.GetFieldContext(ctx)
	oc := graphql.GetOperationContext(ctx)
	if fc == nil || oc == nil {
		return out
	}
	for _, edges := range graphql.CollectFields(oc, fc.Field.Selections, nil) {
		if edges.Name != "edges" {
			continue
		}
		for _, node := range graphql.CollectFields(oc, edges.Selections, nil) {
			if node.Name != "node" {
				continue
			}
			for _, f := range graphql.CollectFields(oc, node.Selections, nil) {
				out[f.Name] = true
			}
		}
	}
	return out
}
