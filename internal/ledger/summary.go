package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
)

// ExpiringLimit is how many upcoming expiry dates a summary lists. A
// user with points expiring on more dates sees the soonest ones; the rest
// are still in the balance and show up as the first ones expire.
const ExpiringLimit = 3

// Expiring is the points of a user that expire on one calendar day.
type Expiring struct {
	Points int64 `json:"points"`
	// ExpiresAt is the first instant at which points of that day stop
	// being spendable (expiry is exclusive: spendable strictly before).
	// Several lots of one day with different instants (rolling expiry)
	// are shown at the earliest: the user should spend before then.
	ExpiresAt time.Time `json:"expiresAt"`
}

// Summary is the points lifecycle of one user as the partner, the export
// and the app show it.
type Summary struct {
	UserID uuid.UUID
	// Balance is the available (spendable) balance.
	Balance int64
	// PendingPoints are earned but not yet spendable (pending lots).
	PendingPoints int64
	// LifetimePoints counts earns and positive adjustments once available.
	LifetimePoints int64
	// Expiring is the available points that will expire, grouped by the
	// calendar day (in the partner's time zone) of their last spendable
	// instant, soonest first, at most ExpiringLimit days. Points that
	// never expire are not in it, nor pending points (they are listed once
	// they activate, with the expiry their lot already has).
	Expiring []Expiring
}

// ExpiringByUserSQL returns a query of (user_id, expiring) for the users
// of userFilter (an expression usable as "l.user_id IN (...)" ) that have
// expiring points: expiring is a JSON array of {points, expiresAt} (see
// Summary.Expiring); users without are absent (read them as []). The day
// of a lot is the partner-local date of its last spendable microsecond, so
// a lot expiring "at the end of 31 Dec" (midnight on 1 Jan) is of 31 Dec.
//
// It is one set-based pass for any number of users (a page of the user
// list, every user of an export): the lots come from point_lots_fifo_idx
// or, when most of the partner's users are asked for, from
// point_lots_expiry_idx, which holds only lots that can still expire, so a
// program whose points never expire pays nothing for it.
func ExpiringByUserSQL(partnerExpr, userFilter, tzExpr string) string {
	return `SELECT x.user_id, json_agg(json_build_object('points', x.points, 'expiresAt', x.expires_at) ORDER BY x.expires_at) AS expiring
	FROM (
		SELECT d.user_id, d.points, d.expires_at, row_number() OVER (PARTITION BY d.user_id ORDER BY d.expires_at) AS rn
		FROM (
			SELECT l.user_id, sum(l.remaining) AS points, min(l.expires_at) AS expires_at
			FROM point_lots l
			WHERE l.partner_id = ` + partnerExpr + ` AND l.open AND NOT l.pending AND l.expires_at IS NOT NULL
			  AND l.user_id IN (` + userFilter + `)
			GROUP BY l.user_id, ((l.expires_at - interval '1 microsecond') AT TIME ZONE ` + tzExpr + `)::date
		) d
	) x
	WHERE x.rn <= ` + fmt.Sprint(ExpiringLimit) + `
	GROUP BY x.user_id`
}

// SummaryOf returns one user's lifecycle summary (zeros when they never
// had points).
func (s *Service) SummaryOf(ctx context.Context, db bun.IDB, partnerID, userID uuid.UUID) (*Summary, error) {
	m, err := s.SummariesOf(ctx, db, partnerID, []uuid.UUID{userID})
	if err != nil {
		return nil, err
	}
	return m[userID], nil
}

// SummariesOf returns the lifecycle summaries of many users of a partner
// in one query (a page of the user list, say); every id asked for is in
// the map, users without points with zeros. Ids of another partner's users
// get zeros too: nothing of theirs is read.
func (s *Service) SummariesOf(ctx context.Context, db bun.IDB, partnerID uuid.UUID, userIDs []uuid.UUID) (map[uuid.UUID]*Summary, error) {
	out := make(map[uuid.UUID]*Summary, len(userIDs))
	for _, id := range userIDs {
		out[id] = &Summary{UserID: id, Expiring: []Expiring{}}
	}
	if len(userIDs) == 0 {
		return out, nil
	}
	var rows []struct {
		UserID         uuid.UUID  `bun:"user_id"`
		Points         int64      `bun:"points"`
		PendingPoints  int64      `bun:"pending_points"`
		LifetimeEarned int64      `bun:"lifetime_earned"`
		Expiring       []Expiring `bun:"expiring,type:json"`
	}
	err := db.NewRaw(`WITH x AS (`+ExpiringByUserSQL("?0", "SELECT unnest(?1::uuid[])", "(SELECT p.timezone FROM partners p WHERE p.id = ?0)")+`)
		SELECT b.user_id, b.points, b.pending_points, b.lifetime_earned, coalesce(x.expiring, '[]'::json) AS expiring
		FROM balances b
		LEFT JOIN x ON x.user_id = b.user_id
		WHERE b.partner_id = ?0 AND b.user_id = ANY(?1::uuid[])`, partnerID, pgdialect.Array(userIDs)).Scan(ctx, &rows)
	if err != nil {
		return nil, fmt.Errorf("load points summaries: %w", err)
	}
	for _, r := range rows {
		sm := out[r.UserID]
		sm.Balance, sm.PendingPoints, sm.LifetimePoints = r.Points, r.PendingPoints, r.LifetimeEarned
		for _, x := range r.Expiring {
			// JSON timestamps carry the session's offset: answer in UTC.
			sm.Expiring = append(sm.Expiring, Expiring{Points: x.Points, ExpiresAt: x.ExpiresAt.UTC()})
		}
	}
	return out, nil
}

// SourceTypeLot names what an activate, expire or cancel entry's
// source_id points at: a lot (whose source_entry_id is its earn). A
// reverse names the earn it undoes (SourceEarn, SourcePendingEarn).
const SourceTypeLot = "lot"

// LotsByIDs returns the user's lots with the given ids (history's "which
// lot expired"). Ids of other users' lots are absent from the map.
func (s *Service) LotsByIDs(ctx context.Context, db bun.IDB, partnerID, userID uuid.UUID, ids []int64) (map[int64]*Lot, error) {
	var lots []Lot
	if err := db.NewSelect().Model(&lots).Where("partner_id = ? AND user_id = ? AND id = ANY(?::bigint[])", partnerID, userID, pgdialect.Array(ids)).
		Scan(ctx); err != nil {
		return nil, fmt.Errorf("load lots by id: %w", err)
	}
	out := make(map[int64]*Lot, len(lots))
	for i := range lots {
		out[lots[i].ID] = &lots[i]
	}
	return out, nil
}

// LotsBySourceEntries returns the lots the user's credits with the given
// entry ids created (history's "when do these points expire"), by entry id.
// Debits and pre-lots credits have none.
func (s *Service) LotsBySourceEntries(ctx context.Context, db bun.IDB, partnerID, userID uuid.UUID, entryIDs []int64) (map[int64]*Lot, error) {
	var lots []Lot
	if err := db.NewSelect().Model(&lots).Where("partner_id = ? AND user_id = ? AND source_entry_id = ANY(?::bigint[])", partnerID, userID, pgdialect.Array(entryIDs)).
		Scan(ctx); err != nil {
		return nil, fmt.Errorf("load lots by source entry: %w", err)
	}
	out := make(map[int64]*Lot, len(lots))
	for i := range lots {
		out[*lots[i].SourceEntryID] = &lots[i]
	}
	return out, nil
}

// EntriesByIDs returns the user's entries with the given ids (history's
// "which earn did this reverse"). Other users' ids are absent.
func (s *Service) EntriesByIDs(ctx context.Context, db bun.IDB, partnerID, userID uuid.UUID, ids []int64) (map[int64]*Entry, error) {
	var es []Entry
	if err := db.NewSelect().Model(&es).Where("partner_id = ? AND user_id = ? AND id = ANY(?::bigint[])", partnerID, userID, pgdialect.Array(ids)).
		Scan(ctx); err != nil {
		return nil, fmt.Errorf("load entries by id: %w", err)
	}
	out := make(map[int64]*Entry, len(es))
	for i := range es {
		out[es[i].ID] = &es[i]
	}
	return out, nil
}
