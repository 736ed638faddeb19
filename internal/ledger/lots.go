package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/perkshq/perks/internal/event"
)

// Lot is one credit's points: what is left of them, when they become
// spendable and when they expire (nil: never). See docs/points.md, "Lots".
type Lot struct {
	bun.BaseModel `bun:"table:point_lots"`

	PartnerID     uuid.UUID `bun:"partner_id,pk,type:uuid"`
	ID            int64     `bun:"id,pk,autoincrement"`
	UserID        uuid.UUID `bun:"user_id,type:uuid"`
	SourceEntryID *int64    `bun:"source_entry_id"`
	// MigratedThrough is set on the lots the migration made of pre-lots
	// balances: the user's last entry then.
	MigratedThrough *int64 `bun:"migrated_through"`
	Points          int64  `bun:"points"`
	Remaining       int64  `bun:"remaining"`
	Pending         bool   `bun:"pending"`
	// AvailableAt is zero for a lot held until the partner confirms it
	// (NULL in the table): ActivateDueTx never activates it.
	AvailableAt time.Time  `bun:"available_at,nullzero"`
	ExpiresAt   *time.Time `bun:"expires_at"`
	// DebtPaid is the part of Points that paid a negative balance when
	// the lot was credited or activated: never spendable.
	DebtPaid  int64     `bun:"debt_paid"`
	CreatedAt time.Time `bun:"created_at"`
}

// lockDueUsers locks, in a fixed order (the one EarnManyTx uses too, so
// the jobs never deadlock with it), the balance rows of the owners of the
// given lots, and returns the lots again. Later statements then see every
// lot change those users' writers committed.
func lockDueUsers(ctx context.Context, db bun.IDB, partners []uuid.UUID, ids []int64) error {
	_, err := db.NewRaw(`SELECT 1 FROM balances b
		WHERE (b.partner_id, b.user_id) IN (
			SELECT l.partner_id, l.user_id FROM point_lots l JOIN unnest(?::uuid[], ?::bigint[]) AS t(p, id) ON l.partner_id = t.p AND l.id = t.id)
		ORDER BY b.partner_id, b.user_id FOR UPDATE OF b`, pgdialect.Array(partners), pgdialect.Array(ids)).Exec(ctx)
	if err != nil {
		return fmt.Errorf("lock balances of due lots: %w", err)
	}
	return nil
}

// ExpireDueTx expires up to batch available lots whose expires_at is at or
// before now and that still have points: each gets an expire entry of
// exactly its remainder (never points already spent, which are no longer
// in remaining), an allocation to itself, remaining 0, and its owner's
// balance drops by as much. Lots of one user expire in expiry order, so
// the entries' balance_after stay the running sum. It returns how many lots
// it expired; 0 means nothing was due (or every due lot was drained by a
// burn meanwhile). Running it again (or concurrently,
// or after a crash, since it commits with the caller's tx) expires nothing
// twice: a lot with remaining 0 is not due, and an index refuses a second
// expire entry for a lot. Pending lots are activated first by ActivateDueTx.
//
// Each expired lot gets a points.expired event, recorded through ev in the
// same transaction with one statement for the whole batch (the statement
// that expires returns what the events say; no round trip per lot), so
// the events are exactly the expire entries: a rolled-back batch has
// neither, a second run neither.
func ExpireDueTx(ctx context.Context, tx bun.Tx, ev *event.Recorder, now time.Time, batch int) (int, error) {
	now = now.UTC()
	partners, ids, err := lockDueLots(ctx, tx, `SELECT partner_id, id FROM point_lots
		WHERE open AND NOT pending AND expires_at IS NOT NULL AND expires_at <= ?
		ORDER BY expires_at LIMIT ?`, now, batch)
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	// Re-read under the locks: a burn may have drained a lot meanwhile.
	var expired []struct {
		PartnerID    uuid.UUID `bun:"partner_id"`
		EntryID      int64     `bun:"entry_id"`
		UserID       uuid.UUID `bun:"user_id"`
		LotID        int64     `bun:"lot_id"`
		Points       int64     `bun:"points"`
		BalanceAfter int64     `bun:"balance_after"`
	}
	err = tx.NewRaw(`WITH due AS (
		SELECT l.partner_id, l.id, l.user_id, l.remaining, l.expires_at,
		       b.points - sum(l.remaining) OVER (PARTITION BY l.partner_id, l.user_id ORDER BY l.expires_at, l.id) AS after
		FROM point_lots l
		JOIN unnest(?::uuid[], ?::bigint[]) AS t(p, id) ON l.partner_id = t.p AND l.id = t.id
		JOIN balances b ON b.partner_id = l.partner_id AND b.user_id = l.user_id
		WHERE l.remaining > 0 AND NOT l.pending AND l.expires_at <= ?
	), num AS (
		-- Entry ids in the order of the running sum (volatile target
		-- lists are evaluated after the sort; INSERT ... SELECT ... ORDER
		-- BY alone would not number them in order).
		SELECT nextval(pg_get_serial_sequence('ledger_entries', 'id')) AS eid, due.*
		FROM due ORDER BY partner_id, user_id, expires_at, id
	), ent AS (
		INSERT INTO ledger_entries (partner_id, id, user_id, kind, points, balance_after, reason, source_type, source_id, occurred_at, created_at)
		OVERRIDING SYSTEM VALUE
		SELECT partner_id, eid, user_id, 'expire', -remaining, after, 'points expired', 'lot', id::text, expires_at, ?
		FROM num
		RETURNING partner_id, id, user_id, source_id, points, balance_after
	), lots AS (
		UPDATE point_lots l SET remaining = 0 FROM due WHERE l.partner_id = due.partner_id AND l.id = due.id
	), alloc AS (
		INSERT INTO lot_allocations (partner_id, entry_id, lot_id, points) SELECT partner_id, id, source_id::bigint, -points FROM ent
	), bal AS (
		UPDATE balances b SET points = b.points - s.total, updated_at = ?
		FROM (SELECT partner_id, user_id, sum(remaining) AS total FROM due GROUP BY partner_id, user_id) s
		WHERE b.partner_id = s.partner_id AND b.user_id = s.user_id
	)
	SELECT partner_id, id AS entry_id, user_id, source_id::bigint AS lot_id, points, balance_after FROM ent ORDER BY id`,
		pgdialect.Array(partners), pgdialect.Array(ids), now, now, now).Scan(ctx, &expired)
	if err != nil {
		return 0, fmt.Errorf("expire %d lots: %w", len(ids), err)
	}
	if ev == nil {
		ev = &event.Recorder{}
	}
	events := make([]*event.Event, len(expired))
	for i, x := range expired {
		// Ids and amounts only (no personal data, see package event);
		// points is the entry's, negative like a debit's.
		data, err := json.Marshal(map[string]any{"userId": x.UserID, "lotId": x.LotID, "entryId": x.EntryID, "points": x.Points, "balance": x.BalanceAfter})
		if err != nil {
			return 0, fmt.Errorf("marshal points.expired: %w", err)
		}
		uid := x.UserID
		events[i] = &event.Event{PartnerID: x.PartnerID, ID: uuid.New(), Type: event.PointsExpired, UserID: &uid, Data: data, CreatedAt: now}
	}
	if err := ev.RecordTx(ctx, tx, events...); err != nil {
		return 0, fmt.Errorf("record points.expired: %w", err)
	}
	return len(expired), nil
}

// ActivateDueTx makes up to batch pending lots whose available_at is at or
// before now spendable: each gets an activate entry of its points (which
// the available balance and the lifetime total now count), leaves
// pending_points and stops being pending; when the balance is negative (a
// reversal's debt) the lot pays it first and keeps spendable only what is
// left above zero. Idempotent like ExpireDueTx. It returns how many lots it
// activated; 0 means nothing is due. Held lots (no available_at) are never
// due: only ConfirmTx activates them.
//
// Each activated lot gets a points.activated event (ev; nil stores the
// events without an outbox), all written with one RecordTx in tx: the
// activation statement returns what the events carry, so there is no
// round trip per lot.
func ActivateDueTx(ctx context.Context, tx bun.Tx, ev *event.Recorder, now time.Time, batch int) (int, error) {
	rows, err := activateDueTx(ctx, tx, ev, now, batch)
	return len(rows), err
}

// activateDueTx is ActivateDueTx returning what it activated.
func activateDueTx(ctx context.Context, tx bun.Tx, ev *event.Recorder, now time.Time, batch int) ([]activated, error) {
	now = now.UTC()
	partners, ids, err := lockDueLots(ctx, tx, `SELECT partner_id, id FROM point_lots WHERE pending AND available_at <= ?
		ORDER BY available_at LIMIT ?`, now, batch)
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	var rows []activated
	err = tx.NewRaw(`WITH due AS (
		SELECT l.partner_id, l.id, l.user_id, l.points, l.available_at, l.source_entry_id,
		       b.points + sum(l.points) OVER (PARTITION BY l.partner_id, l.user_id ORDER BY l.available_at, l.id) AS after
		FROM point_lots l
		JOIN unnest(?::uuid[], ?::bigint[]) AS t(p, id) ON l.partner_id = t.p AND l.id = t.id
		JOIN balances b ON b.partner_id = l.partner_id AND b.user_id = l.user_id
		WHERE l.pending AND l.available_at <= ?
	), num AS (
		SELECT nextval(pg_get_serial_sequence('ledger_entries', 'id')) AS eid, due.*
		FROM due ORDER BY partner_id, user_id, available_at, id
	), ent AS (
		INSERT INTO ledger_entries (partner_id, id, user_id, kind, points, balance_after, reason, source_type, source_id, occurred_at, created_at)
		OVERRIDING SYSTEM VALUE
		SELECT partner_id, eid, user_id, 'activate', points, after, 'pending points available', 'lot', id::text, available_at, ?
		FROM num
		RETURNING partner_id, id
	), lots AS (
		-- A debt (a balance below zero after a reversal) is paid first:
		-- the lot keeps spendable only its part above zero.
		UPDATE point_lots l SET pending = false, remaining = least(due.points, greatest(due.after, 0)),
		       debt_paid = due.points - least(due.points, greatest(due.after, 0))
		FROM due WHERE l.partner_id = due.partner_id AND l.id = due.id
	), bal AS (
		UPDATE balances b SET points = b.points + s.total, pending_points = b.pending_points - s.total,
		       lifetime_earned = b.lifetime_earned + s.total, updated_at = ?
		FROM (SELECT partner_id, user_id, sum(points) AS total FROM due GROUP BY partner_id, user_id) s
		WHERE b.partner_id = s.partner_id AND b.user_id = s.user_id
	)
	SELECT num.partner_id, num.eid AS entry_id, num.user_id, num.id AS lot_id, num.points, num.after AS balance,
	       num.source_entry_id AS earn_entry_id, src.reference
	FROM ent JOIN num ON num.partner_id = ent.partner_id AND num.eid = ent.id
	LEFT JOIN ledger_entries src ON src.partner_id = num.partner_id AND src.id = num.source_entry_id
	ORDER BY num.eid`, pgdialect.Array(partners), pgdialect.Array(ids), now, now, now).Scan(ctx, &rows)
	if err != nil {
		return nil, fmt.Errorf("activate %d lots: %w", len(ids), err)
	}
	if ev == nil {
		ev = &event.Recorder{}
	}
	events := make([]*event.Event, len(rows))
	for i, r := range rows {
		data, err := json.Marshal(map[string]any{
			"userId": r.UserID, "entryId": r.EntryID, "earnEntryId": r.EarnEntryID, "lotId": r.LotID,
			"reference": r.Reference, "points": r.Points, "balance": r.Balance, "confirmed": false,
		})
		if err != nil {
			return nil, fmt.Errorf("marshal points.activated: %w", err)
		}
		uid := r.UserID
		events[i] = &event.Event{PartnerID: r.PartnerID, ID: uuid.New(), Type: event.PointsActivated, UserID: &uid, Data: data, CreatedAt: now}
	}
	if err := ev.RecordTx(ctx, tx, events...); err != nil {
		return nil, err
	}
	return rows, nil
}

// activated is one lot ActivateDueTx activated, for its event.
type activated struct {
	PartnerID   uuid.UUID `bun:"partner_id"`
	EntryID     int64     `bun:"entry_id"`
	UserID      uuid.UUID `bun:"user_id"`
	LotID       int64     `bun:"lot_id"`
	Points      int64     `bun:"points"`
	Balance     int64     `bun:"balance"`
	EarnEntryID *int64    `bun:"earn_entry_id"`
	Reference   *string   `bun:"reference"`
}

// Lots returns a user's lots, oldest first (tests and support).
func (s *Service) Lots(ctx context.Context, db bun.IDB, partnerID, userID uuid.UUID) ([]Lot, error) {
	var out []Lot
	if err := db.NewSelect().Model(&out).Where("partner_id = ? AND user_id = ?", partnerID, userID).OrderExpr("id").Scan(ctx); err != nil {
		return nil, fmt.Errorf("load lots: %w", err)
	}
	return out, nil
}

// lockDueLots runs find (a query of partner_id, id with the parameters now
// and batch) and locks the users of the lots it finds (lockDueUsers), so
// the caller can re-read them under the locks. No lot found is (nil, nil,
// nil).
func lockDueLots(ctx context.Context, tx bun.IDB, find string, now time.Time, batch int) ([]uuid.UUID, []int64, error) {
	var due []struct {
		PartnerID uuid.UUID `bun:"partner_id"`
		ID        int64     `bun:"id"`
	}
	if err := tx.NewRaw(find, now, batch).Scan(ctx, &due); err != nil {
		return nil, nil, fmt.Errorf("find due lots: %w", err)
	}
	if len(due) == 0 {
		return nil, nil, nil
	}
	partners, ids := make([]uuid.UUID, len(due)), make([]int64, len(due))
	for i, d := range due {
		partners[i], ids[i] = d.PartnerID, d.ID
	}
	if err := lockDueUsers(ctx, tx, partners, ids); err != nil {
		return nil, nil, err
	}
	return partners, ids, nil
}
