// Package ledger keeps points like money: an append-only list of signed
// entries per user and a balance row that is their running sum.
//
// Every change is one conditional statement on the balance row (so two
// concurrent burns can never both spend the same points: the second waits
// for the first's row lock and re-checks) followed by the entry insert with
// the resulting balance_after, inside the caller's transaction. The database
// enforces the rest: entries never updated, amounts within bounds. Debits
// never take a balance below zero; only a reversal may (ReverseTx, under
// the program policy negativeBalance = allow), and credits pay such a debt
// first.
package ledger

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/database"
	"github.com/perkshq/perks/internal/event"
)

// Limits. One change moves at most MaxPoints; a balance (and lifetime total)
// never exceeds MaxBalance. Both fit comfortably in JavaScript's 2^53.
const (
	MaxPoints  int64 = 1_000_000_000
	MaxBalance int64 = 1_000_000_000_000
)

// Kind is what an entry records.
type Kind string

// Entry kinds. earn and refund add points, burn and expire remove them,
// adjust goes either way (support corrections).
const (
	KindEarn   Kind = "earn"
	KindBurn   Kind = "burn"
	KindRefund Kind = "refund"
	KindExpire Kind = "expire"
	KindAdjust Kind = "adjust"
	// KindPending records an earn held until its lot activates: its points
	// are in Balance.PendingPoints, not in the available balance, so it is
	// left out of the running sum. KindActivate makes them available.
	KindPending  Kind = "pending"
	KindActivate Kind = "activate"
	// KindReverse takes back points of an earn (a refund of its order);
	// KindCancel removes a held earn before it activates and, like
	// KindPending, is outside the available balance's running sum.
	KindReverse Kind = "reverse"
	KindCancel  Kind = "cancel"
)

// Entry is one ledger row.
type Entry struct {
	bun.BaseModel `bun:"table:ledger_entries"`

	PartnerID    uuid.UUID       `bun:"partner_id,pk,type:uuid"`
	ID           int64           `bun:"id,pk,autoincrement"`
	UserID       uuid.UUID       `bun:"user_id,type:uuid"`
	Kind         Kind            `bun:"kind"`
	Points       int64           `bun:"points"`
	BalanceAfter int64           `bun:"balance_after"`
	Reason       string          `bun:"reason"`
	ActionCode   *string         `bun:"action_code"`
	SourceType   *string         `bun:"source_type"`
	SourceID     *string         `bun:"source_id"`
	Reference    *string         `bun:"reference"`
	Metadata     json.RawMessage `bun:"metadata,type:jsonb,nullzero"`
	OccurredAt   time.Time       `bun:"occurred_at"`
	CreatedAt    time.Time       `bun:"created_at"`

	// PendingUntil is, on a pending entry ApplyTx just wrote, when its
	// points become available; nil when held until confirmed (and on
	// entries read back: the lot has the date).
	PendingUntil *time.Time `bun:"-"`
	// LifetimeAfter is, on a credit ApplyTx just wrote, the user's
	// lifetime earned points once it moved the balance, under the balance
	// row's lock: it counts every credit committed before this one, so an
	// earn can tell how much the user gained since it last read the row
	// (tier.EarnState.MayChange); 0 on other entries.
	LifetimeAfter int64 `bun:"-"`
	// Breakdown is how an earn's points were computed (earning.Breakdown
	// as JSON); nil on other entries and on earns older than it.
	Breakdown json.RawMessage `bun:"breakdown,type:jsonb,nullzero"`
}

// Balance is a user's current points and lifetime earnings.
type Balance struct {
	bun.BaseModel `bun:"table:balances"`

	PartnerID      uuid.UUID `bun:"partner_id,pk,type:uuid"`
	UserID         uuid.UUID `bun:"user_id,pk,type:uuid"`
	Points         int64     `bun:"points"`
	LifetimeEarned int64     `bun:"lifetime_earned"`
	PendingPoints  int64     `bun:"pending_points"`
	UpdatedAt      time.Time `bun:"updated_at"`
}

// Change describes one movement of points.
type Change struct {
	UserID uuid.UUID
	Kind   Kind
	// Points is the absolute amount for earn/burn/refund/expire and the
	// signed amount for adjust.
	Points     int64
	Reason     string
	ActionCode string
	SourceType string
	SourceID   string
	Reference  string
	Metadata   json.RawMessage
	OccurredAt time.Time
	// AvailableAt and ExpiresAt shape the lot a credit creates (earn,
	// refund, adjust up; debits ignore them). A zero AvailableAt (or one not
	// after now) makes the points spendable at once; a later one holds an
	// earn as pending (only earns may be held) until ActivateDueTx. A nil
	// ExpiresAt never expires.
	AvailableAt time.Time
	ExpiresAt   *time.Time
	// Held holds an earn pending with no date: only ConfirmTx makes it
	// available (and dates its expiry then: ExpiresAt is ignored), or
	// CancelTx removes it; ActivateDueTx never does. Its lot's
	// available_at is NULL.
	Held bool
	// Breakdown, a JSON object, is stored on the entry of a credit (the
	// earn's computation, see earning.Breakdown); debits ignore it.
	Breakdown json.RawMessage
}

// Service applies changes.
type Service struct {
	Events *event.Recorder
	Now    func() time.Time
}

// NewService returns a Service using the wall clock.
func NewService(ev *event.Recorder) *Service { return &Service{Events: ev, Now: time.Now} }

// ValidatePoints checks an absolute amount.
func ValidatePoints(field string, p int64) error {
	if p < 1 || p > MaxPoints {
		return apperr.Field(apperr.CodePointsOutOfRange, field, "%s must be a whole number from 1 to %d", field, MaxPoints)
	}
	return nil
}

// signed returns the balance delta and the lifetime increment of c.
func (c Change) signed() (delta, earned int64, err error) {
	switch c.Kind {
	case KindEarn:
		return c.Points, c.Points, ValidatePoints("points", c.Points)
	case KindRefund:
		return c.Points, 0, ValidatePoints("points", c.Points)
	case KindBurn:
		return -c.Points, 0, ValidatePoints("points", c.Points)
	case KindExpire:
		// An expiry is of one lot's remainder, never FIFO: ExpireDueTx.
		return 0, 0, errors.New("expire entries are written by ExpireDueTx, not ApplyTx")
	case KindAdjust:
		if c.Points == 0 || c.Points > MaxPoints || c.Points < -MaxPoints {
			return 0, 0, apperr.Field(apperr.CodePointsOutOfRange, "points", "points must be a non-zero whole number between -%d and %d", MaxPoints, MaxPoints)
		}
		if c.Points > 0 {
			return c.Points, c.Points, nil
		}
		return c.Points, 0, nil
	}
	return 0, 0, fmt.Errorf("unknown ledger kind %q", c.Kind)
}

// ApplyTx moves points for one user inside tx and returns the entry. It
// fails with INSUFFICIENT_POINTS when the balance would go negative,
// POINTS_OUT_OF_RANGE when it would exceed MaxBalance, and CONFLICT when the
// partner reference was already used. earn and adjust also write their
// points.earned / points.adjusted event in tx.
func (s *Service) ApplyTx(ctx context.Context, tx bun.Tx, partnerID uuid.UUID, c Change) (*Entry, error) {
	delta, earned, err := c.signed()
	if err != nil {
		return nil, err
	}
	now := s.Now().UTC()
	if c.OccurredAt.IsZero() {
		c.OccurredAt = now
	}

	// One statement moves the balance and appends the entry with the
	// resulting balance_after: the balance row's lock serialises concurrent
	// changes of the user, and the entry cannot disagree with the balance.
	// It is the hottest statement of Perks: a prepared one.
	e := &Entry{
		PartnerID: partnerID, UserID: c.UserID, Kind: c.Kind, Points: delta,
		Reason: c.Reason, ActionCode: opt(c.ActionCode), SourceType: opt(c.SourceType), SourceID: opt(c.SourceID),
		Reference: opt(c.Reference), Metadata: c.Metadata, OccurredAt: c.OccurredAt.UTC(), CreatedAt: now,
	}
	if delta > 0 {
		e.Breakdown = c.Breakdown
	}
	var metadata *string
	if len(c.Metadata) > 0 {
		m := string(c.Metadata)
		metadata = &m
	}
	pending := delta > 0 && (c.Held || c.AvailableAt.After(now))
	if pending && c.Kind != KindEarn {
		return nil, fmt.Errorf("only earns may be held pending, not %s", c.Kind)
	}
	if c.ExpiresAt != nil && delta > 0 && !c.ExpiresAt.After(now) {
		return nil, apperr.Field(apperr.CodeInvalidField, "expiresAt", "expiresAt must be in the future")
	}
	query, args := debitSQL, []any{partnerID, c.UserID, delta, now, nil}
	switch {
	case pending:
		e.Kind = KindPending
		query, args = pendingSQL, []any{partnerID, c.UserID, delta, now, nil}
	case delta > 0:
		query, args = creditSQL, []any{partnerID, c.UserID, delta, now, earned}
	}
	args = append(args, string(e.Kind), e.Reason, e.ActionCode, e.SourceType, e.SourceID, e.Reference, metadata, e.OccurredAt)
	if delta > 0 {
		var availableAt any = now
		if pending {
			availableAt = c.AvailableAt.UTC()
		}
		if c.Held {
			availableAt, c.ExpiresAt = nil, nil
		}
		var expiresAt *time.Time
		if c.ExpiresAt != nil {
			x := c.ExpiresAt.UTC()
			expiresAt = &x
		}
		var breakdown *string
		if len(c.Breakdown) > 0 {
			b := string(c.Breakdown)
			breakdown = &b
		}
		args = append(args, availableAt, expiresAt, breakdown)
	}
	row, err := database.QueryRow(ctx, tx, query, args...)
	allocated := int64(0)
	if err == nil && delta < 0 {
		err = row.Scan(&e.ID, &e.BalanceAfter, &allocated)
	} else if err == nil {
		err = row.Scan(&e.ID, &e.BalanceAfter, &e.LifetimeAfter)
	}
	switch {
	case errors.Is(err, sql.ErrNoRows):
		// Only the conditional UPDATE of a debit can match no row.
		return nil, apperr.New(apperr.CodeInsufficientPoints, "the balance is lower than %d points", -delta)
	case err == nil:
	case isCheckViolation(err, "balances_points_max") || isCheckViolation(err, "balances_lifetime_max"):
		return nil, apperr.New(apperr.CodePointsOutOfRange, "the balance would exceed the maximum of %d points", MaxBalance)
	case isForeignKeyViolation(err):
		return nil, apperr.New(apperr.CodeUserNotFound, "user not found")
	case isUnique(err, "ledger_entries_reference_idx"):
		return nil, apperr.Field(apperr.CodeConflict, "reference", "reference %q was already used for another entry", c.Reference)
	default:
		return nil, fmt.Errorf("move balance and append entry: %w", err)
	}
	points := e.BalanceAfter
	if delta < 0 && allocated != -delta {
		return nil, fmt.Errorf("lots of the user cover %d of the %d points debited: lots and balance disagree", allocated, -delta)
	}

	var typ string
	switch {
	case pending:
		typ = event.PointsPending
	case c.Kind == KindEarn:
		typ = event.PointsEarned
	case c.Kind == KindAdjust:
		typ = event.PointsAdjusted
	}
	if typ != "" {
		data := map[string]any{"userId": c.UserID, "entryId": e.ID, "points": delta, "balance": points}
		if c.ActionCode != "" {
			data["action"] = c.ActionCode
		}
		if pending {
			e.PendingUntil = PendingUntil(c.Held, c.AvailableAt)
			data["reference"], data["availableAt"] = e.Reference, e.PendingUntil
		}
		if _, err := s.Events.EmitTx(ctx, tx, partnerID, typ, &c.UserID, data); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// appendEntry is the entry half of creditSQL, pendingSQL and debitSQL: $1 partner, $2
// user, $3 signed points, $4 now, then $6.. kind, reason, action, source
// type and id, reference, metadata, occurred at.
const appendEntry = `
INSERT INTO ledger_entries (partner_id, user_id, kind, points, balance_after, reason, action_code, source_type, source_id, reference, metadata, occurred_at, created_at)
SELECT $1, $2, $6, $3, moved.points, $7, $8, $9, $10, $11, $12::jsonb, $13, $4 FROM moved`

// appendCreditEntry is appendEntry with the breakdown ($16), for credits.
const appendCreditEntry = `
INSERT INTO ledger_entries (partner_id, user_id, kind, points, balance_after, reason, action_code, source_type, source_id, reference, metadata, occurred_at, created_at, breakdown)
SELECT $1, $2, $6, $3, moved.points, $7, $8, $9, $10, $11, $12::jsonb, $13, $4, $16::jsonb FROM moved`

// appendLot is the lot half of creditSQL and pendingSQL, in the same
// statement so a credit costs no extra round trip: $14 available at (NULL:
// held until confirmed, a pending lot), $15 expires at (NULL: never). A
// credit to a negative balance (a reversal's debt, docs/points.md
// "Reversals and refunds") pays the debt first: the lot keeps spendable
// only the part of its points above zero (least(points,
// greatest(balance_after, 0))) and records the rest as debt_paid. A pending
// lot is never touched by this: its entry's balance_after is the unchanged
// available balance, and it pays on activation (ActivateDueTx, ConfirmTx).
const appendLot = `
), lot AS (
	INSERT INTO point_lots (partner_id, user_id, source_entry_id, points, remaining, debt_paid, pending, available_at, expires_at, created_at)
	SELECT $1, $2, entry.id, $3, r.remaining, $3 - r.remaining, r.pending, $14, $15::timestamptz, $4
	FROM entry, LATERAL (SELECT coalesce($14::timestamptz > $4, true) AS pending) p,
	LATERAL (SELECT p.pending, CASE WHEN p.pending THEN $3 ELSE least($3, greatest(entry.balance_after, 0)) END AS remaining) r
)
SELECT entry.id, entry.balance_after, moved.lifetime_earned FROM entry, moved`

// creditSQL adds points ($5: lifetime increment), creating the balance row
// on a user's first points, and their lot.
const creditSQL = `WITH moved AS (
	INSERT INTO balances AS b (partner_id, user_id, points, lifetime_earned, updated_at) VALUES ($1, $2, $3, $5, $4)
	ON CONFLICT (partner_id, user_id) DO UPDATE
	SET points = b.points + EXCLUDED.points, lifetime_earned = b.lifetime_earned + EXCLUDED.lifetime_earned, updated_at = EXCLUDED.updated_at
	RETURNING points, lifetime_earned
), entry AS (` + appendCreditEntry + `
	RETURNING id, balance_after` + appendLot

// pendingSQL holds an earn: the points go to pending_points (lifetime
// counts them on activation), the entry's balance_after is the unchanged
// available balance, and the lot is pending. $5 is unused.
const pendingSQL = `WITH moved AS (
	INSERT INTO balances AS b (partner_id, user_id, pending_points, updated_at) VALUES ($1, $2, $3, $4)
	ON CONFLICT (partner_id, user_id) DO UPDATE
	SET pending_points = b.pending_points + EXCLUDED.pending_points, updated_at = EXCLUDED.updated_at
	RETURNING points, lifetime_earned, $5::bigint AS unused
), entry AS (` + appendCreditEntry + `
	RETURNING id, balance_after` + appendLot

// debitSQL removes points only if the balance covers them and draws them
// from the user's lots (ledger_consume_lots, which must run after the
// balance row is locked, see the migration); $5 is unused so the entry
// parameters keep their numbers.
const debitSQL = `WITH moved AS (
	UPDATE balances SET points = points + $3, updated_at = $4
	WHERE partner_id = $1 AND user_id = $2 AND points + $3 >= 0 AND $5::bigint IS NULL
	RETURNING points
), entry AS (` + appendEntry + `
	RETURNING id, balance_after
)
SELECT id, balance_after, ledger_consume_lots($1, $2, -$3, id) FROM entry`

// BalanceOf returns a user's balance (zero when they never had points).
func (s *Service) BalanceOf(ctx context.Context, db bun.IDB, partnerID, userID uuid.UUID) (*Balance, error) {
	b := &Balance{PartnerID: partnerID, UserID: userID}
	// Prepared: every catalog page and balance read runs it.
	err := database.QueryRowModel(ctx, db, b, `SELECT partner_id, user_id, points, lifetime_earned, pending_points, updated_at
		FROM balances WHERE partner_id = $1 AND user_id = $2`, partnerID, userID)
	if errors.Is(err, sql.ErrNoRows) {
		return &Balance{PartnerID: partnerID, UserID: userID}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load balance: %w", err)
	}
	return b, nil
}

// Direction filters history.
type Direction string

// History filters: credits (points > 0), debits (points < 0), or both.
const (
	DirectionAll    Direction = "all"
	DirectionCredit Direction = "credit"
	DirectionDebit  Direction = "debit"
)

// History returns up to limit entries of a user, newest first, strictly
// older than beforeID when it is positive. Entries of one user get ids in
// commit order (their balance row serialises them), so keyset pages are
// stable while new entries arrive.
func (s *Service) History(ctx context.Context, db bun.IDB, partnerID, userID uuid.UUID, dir Direction, beforeID int64, limit int) ([]Entry, error) {
	var out []Entry
	q := db.NewSelect().Model(&out).Where("partner_id = ? AND user_id = ?", partnerID, userID).
		OrderExpr("id DESC").Limit(int64(limit))
	if beforeID > 0 {
		q = q.Where("id < ?", beforeID)
	}
	switch dir {
	case DirectionCredit:
		q = q.Where("points > 0")
	case DirectionDebit:
		q = q.Where("points < 0")
	}
	if err := q.Scan(ctx); err != nil {
		return nil, fmt.Errorf("ledger history: %w", err)
	}
	return out, nil
}

func opt(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

type sqlStater interface{ SQLState() string }

func state(err error) string {
	var e sqlStater
	if errors.As(err, &e) {
		return e.SQLState()
	}
	return ""
}

func isCheckViolation(err error, constraint string) bool {
	return state(err) == "23514" && strings.Contains(err.Error(), constraint)
}

func isUnique(err error, constraint string) bool {
	return state(err) == "23505" && strings.Contains(err.Error(), constraint)
}

func isForeignKeyViolation(err error) bool { return state(err) == "23503" }

// Entry loads one entry of a user.
func (s *Service) Entry(ctx context.Context, db bun.IDB, partnerID, userID uuid.UUID, id int64) (*Entry, error) {
	e := new(Entry)
	err := db.NewSelect().Model(e).Where("partner_id = ? AND user_id = ? AND id = ?", partnerID, userID, id).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apperr.New(apperr.CodeNotFound, "entry not found")
	}
	if err != nil {
		return nil, fmt.Errorf("load ledger entry %d: %w", id, err)
	}
	return e, nil
}
