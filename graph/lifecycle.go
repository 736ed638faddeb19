package graph

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/google/uuid"
	"github.com/vikstrous/dataloadgen"

	"github.com/perkshq/perks/graph/model"
	"github.com/perkshq/perks/internal/auth"
	"github.com/perkshq/perks/internal/ledger"
)

// lifecycleLoaders adds the loaders of history's why-fields (origin, lot):
// a page of 100 entries asking for both costs one query each, all scoped
// to the authenticated user (another user's lot or entry id finds nothing).
func lifecycleLoaders(r *Resolver, c *auth.ConsumerPrincipal, l *Loaders, wait dataloadgen.Option) {
	pid, uid := c.Partner.ID, c.User.ID
	db := r.DB.Bun
	l.Lots = dataloadgen.NewMappedLoader(func(ctx context.Context, ids []int64) (map[int64]*ledger.Lot, error) {
		return r.Ledger.LotsByIDs(ctx, db, pid, uid, ids)
	}, wait)
	l.LotsBySource = dataloadgen.NewMappedLoader(func(ctx context.Context, ids []int64) (map[int64]*ledger.Lot, error) {
		return r.Ledger.LotsBySourceEntries(ctx, db, pid, uid, ids)
	}, wait)
	l.Summaries = dataloadgen.NewMappedLoader(func(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]*ledger.Summary, error) {
		return r.Ledger.SummariesOf(ctx, db, pid, ids)
	}, wait)
	l.Entries = dataloadgen.NewMappedLoader(func(ctx context.Context, ids []int64) (map[int64]*ledger.Entry, error) {
		return r.Ledger.EntriesByIDs(ctx, db, pid, uid, ids)
	}, wait)
}

// entryKinds maps the ledger's kinds to the schema's enum. A kind the
// schema does not know yet (a newer ledger than schema) is refused with an
// error on that entry rather than shown as something it is not.
var entryKinds = map[ledger.Kind]model.EntryKind{
	ledger.KindEarn: model.EntryKindEarn, ledger.KindBurn: model.EntryKindBurn, ledger.KindRefund: model.EntryKindRefund,
	ledger.KindExpire: model.EntryKindExpire, ledger.KindAdjust: model.EntryKindAdjust, ledger.KindPending: model.EntryKindPending,
	ledger.KindActivate: model.EntryKindActivate, ledger.KindReverse: model.EntryKindReverse, ledger.KindCancel: model.EntryKindCancel,
}

// sourceID returns the entry's source id when its source is of type typ.
func sourceID(e *ledger.Entry, typ string) (int64, bool) {
	if e.SourceType == nil || *e.SourceType != typ || e.SourceID == nil {
		return 0, false
	}
	id, err := strconv.ParseInt(*e.SourceID, 10, 64)
	return id, err == nil
}

// notFoundNil turns a loader's "not in the batch's answer" into null: a
// lot or entry that is not the user's (or no longer exists) is no answer,
// not an error.
func notFoundNil[V any](v *V, err error) (*V, error) {
	if err != nil {
		if errors.Is(err, dataloadgen.ErrNotFound) {
			return nil, nil
		}
		return nil, err
	}
	return v, nil
}

// entryLot is LedgerEntry.lot: the lot an activate or expire names, or the
// lot a credit created.
func entryLot(ctx context.Context, e *ledger.Entry) (*ledger.Lot, error) {
	l, _, err := loaders(ctx)
	if err != nil {
		return nil, err
	}
	if id, ok := sourceID(e, ledger.SourceTypeLot); ok {
		return notFoundNil(l.Lots.Load(ctx, id))
	}
	if e.Points > 0 && e.Kind != ledger.KindActivate {
		return notFoundNil(l.LotsBySource.Load(ctx, e.ID))
	}
	return nil, nil
}

// entryOrigin is LedgerEntry.origin: the earn behind an activate or expire
// (its lot's credit) or the earn a reverse or cancel undoes.
func entryOrigin(ctx context.Context, e *ledger.Entry) (*ledger.Entry, error) {
	l, _, err := loaders(ctx)
	if err != nil {
		return nil, err
	}
	for _, st := range []string{ledger.SourceEarn, ledger.SourcePendingEarn} {
		if id, ok := sourceID(e, st); ok {
			return notFoundNil(l.Entries.Load(ctx, id))
		}
	}
	if _, ok := sourceID(e, ledger.SourceTypeLot); ok {
		lot, err := entryLot(ctx, e)
		if err != nil || lot == nil || lot.SourceEntryID == nil {
			return nil, err // a migrated lot has no credit entry
		}
		return notFoundNil(l.Entries.Load(ctx, *lot.SourceEntryID))
	}
	return nil, nil
}

func entryKind(e *ledger.Entry) (model.EntryKind, error) {
	k, ok := entryKinds[e.Kind]
	if !ok {
		return "", fmt.Errorf("entry %d has kind %q, which the schema does not know", e.ID, e.Kind)
	}
	return k, nil
}

// summary is the lifecycle behind User.pendingPoints and expiringPoints:
// one read for both, through the operation's loader (the user is always
// the authenticated one; without loaders it reads directly).
func summary(ctx context.Context, r *Resolver, partnerID, userID uuid.UUID) (*ledger.Summary, error) {
	if l, c, err := loaders(ctx); err == nil && c.Partner.ID == partnerID {
		return l.Summaries.Load(ctx, userID)
	}
	return r.Ledger.SummaryOf(ctx, r.DB.Bun, partnerID, userID)
}
