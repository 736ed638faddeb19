package referral

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/event"
	"github.com/perkshq/perks/internal/ledger"
	"github.com/perkshq/perks/internal/partner"
	"github.com/perkshq/perks/internal/program"
)

// RewardReason is the reason of a reward entry (shown in the history).
const RewardReason = "Referral reward"

// rewardReference is the ledger reference of one side's reward. It holds
// spaces, which a partner's reference never may (idempotency.ValidateKey),
// so it cannot collide with one; the ledger's unique reference index makes
// each reward exactly-once even if the status check were bypassed.
func rewardReference(id int64, side string) string {
	return "referral " + strconv.FormatInt(id, 10) + " " + side
}

// EarnedTx is the earn hook (earning.Service.Referrals), run in the
// earn's transaction after its entry, only for partners with an enabled
// referral policy (earning's program-parts probe). When e is the
// referee's first earn of the policy's action (with at least
// qualifyMinAmount when set), the user's pending referral qualifies and
// both rewards are written in this transaction:
//
//   - exactly once: the referral moves pending → qualified in one
//     conditional UPDATE (a concurrent qualifying earn waits for its row
//     lock, then matches nothing), and each reward has its own ledger
//     reference;
//   - the referrer's caps (per UTC calendar month of qualification, and
//     lifetime) count the referrer's other referrals that paid them
//     (qualified or rewarded, not cancelled); the referrer's referral-code
//     row is locked first, so two referees qualifying at once cannot both
//     take the last slot. A capped referral still qualifies and pays the
//     referee; the referrer gets 0 and capped is set;
//   - the rewards are pending until the hold ends (holdDays, a dated
//     pending lot that the lots job activates, dated and expiring by the
//     program policy as any earn), or available at once with holdDays 0.
//
// A user without a pending referral costs one indexed UPDATE matching
// nothing.
func (s *Service) EarnedTx(ctx context.Context, tx bun.Tx, p *partner.Partner, e *ledger.Entry, amount *int64) error {
	if e.ActionCode == nil {
		return nil
	}
	now := s.Now().UTC()
	var r Referral
	err := tx.NewRaw(`UPDATE referrals r SET status = 'qualified', qualifying_entry_id = ?, qualified_at = ?
		FROM referral_policies pol
		WHERE r.partner_id = ? AND r.referee_id = ? AND r.status = 'pending'
		  AND pol.partner_id = r.partner_id AND pol.enabled AND pol.qualify_action = ?
		  AND (pol.qualify_min_amount IS NULL OR ?::bigint >= pol.qualify_min_amount)
		RETURNING r.*`, e.ID, now, p.ID, e.UserID, *e.ActionCode, amount).Scan(ctx, &r)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("qualify referral: %w", err)
	}
	// The policy the UPDATE matched: its row is not locked, so a PUT
	// committed in between applies (a policy applies from when it is read).
	pol, _, err := s.Policy(ctx, tx, p.ID)
	if err != nil {
		return err
	}

	referrerPoints, capped, err := s.capTx(ctx, tx, p.ID, &r, pol, pol.ReferrerPoints, now)
	if err != nil {
		return err
	}
	prog, err := (&program.Service{}).Get(ctx, tx, p.ID)
	if err != nil {
		return err
	}
	hold := pol.HoldDays
	availableAt, expiresAt := program.Resolve(prog, program.Overrides{PendingDays: &hold}, now, p.Location())
	pending := availableAt.After(now)
	for _, side := range []struct {
		name   string
		userID uuid.UUID
		points int64
	}{{"referrer", r.ReferrerID, referrerPoints}, {"referee", r.RefereeID, pol.RefereePoints}} {
		if side.points == 0 {
			continue
		}
		if _, err := s.Ledger.ApplyTx(ctx, tx, p.ID, ledger.Change{
			UserID: side.userID, Kind: ledger.KindEarn, Points: side.points, Reason: RewardReason,
			SourceType: "referral", SourceID: strconv.FormatInt(r.ID, 10), Reference: rewardReference(r.ID, side.name),
			AvailableAt: availableAt, ExpiresAt: expiresAt,
		}); err != nil {
			return fmt.Errorf("reward the %s of referral %d: %w", side.name, r.ID, err)
		}
	}
	r.ReferrerPoints, r.RefereePoints, r.Capped = referrerPoints, pol.RefereePoints, capped
	if pending {
		r.HoldUntil = &availableAt
	} else {
		r.Status, r.RewardedAt = StatusRewarded, &now
	}
	if _, err := tx.NewUpdate().Model(&r).Column("status", "referrer_points", "referee_points", "capped", "hold_until", "rewarded_at").WherePK().Exec(ctx); err != nil {
		return fmt.Errorf("record referral rewards: %w", err)
	}
	if err := s.emit(ctx, tx, event.ReferralQualified, &r, map[string]any{"qualifyingEntryId": e.ID, "holdUntil": r.HoldUntil}); err != nil {
		return err
	}
	if !pending {
		return s.emit(ctx, tx, event.ReferralRewarded, &r, nil)
	}
	return nil
}

// EarnedManyTx is EarnedTx for a batch of earns (multistore, bulk): one
// query finds which of the batch's users have a pending referral, then
// each of their earns, in input order, is offered to EarnedTx (the first
// that qualifies wins, as for single earns). A batch without such users
// costs that one query.
func (s *Service) EarnedManyTx(ctx context.Context, tx bun.Tx, p *partner.Partner, entries []*ledger.Entry, amounts []*int64) error {
	if len(entries) == 0 {
		return nil
	}
	users := make([]uuid.UUID, 0, len(entries))
	for _, e := range entries {
		users = append(users, e.UserID)
	}
	var pending []uuid.UUID
	if err := tx.NewRaw(`SELECT referee_id FROM referrals WHERE partner_id = ? AND referee_id = ANY(?) AND status = 'pending'`,
		p.ID, pgdialect.Array(users)).Scan(ctx, &pending); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("find pending referrals of a batch: %w", err)
	}
	if len(pending) == 0 {
		return nil
	}
	want := make(map[uuid.UUID]bool, len(pending))
	for _, u := range pending {
		want[u] = true
	}
	for i, e := range entries {
		if want[e.UserID] {
			if err := s.EarnedTx(ctx, tx, p, e, amounts[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

// capTx is the referrer's points for r under the policy's caps: points,
// or 0 and capped when the referrer already had monthlyCap paid referrals
// this UTC month or lifetimeCap ever. It locks the referrer's code row:
// the serialisation point of one referrer's rewards.
func (s *Service) capTx(ctx context.Context, tx bun.Tx, partnerID uuid.UUID, r *Referral, pol Policy, points int64, now time.Time) (int64, bool, error) {
	if points == 0 || (pol.MonthlyCap == nil && pol.LifetimeCap == nil) {
		return points, false, nil
	}
	if _, err := tx.ExecContext(ctx, `SELECT 1 FROM referral_codes WHERE partner_id = ? AND user_id = ? FOR UPDATE`, partnerID, r.ReferrerID); err != nil {
		return 0, false, fmt.Errorf("lock referrer: %w", err)
	}
	month := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	var n struct {
		Month    int `bun:"month"`
		Lifetime int `bun:"lifetime"`
	}
	if err := tx.NewRaw(`SELECT count(*) FILTER (WHERE qualified_at >= ?) AS month, count(*) AS lifetime FROM referrals
		WHERE partner_id = ? AND referrer_id = ? AND id <> ? AND status IN ('qualified', 'rewarded') AND referrer_points > 0`,
		month, partnerID, r.ReferrerID, r.ID).Scan(ctx, &n); err != nil {
		return 0, false, fmt.Errorf("count referrer's rewards: %w", err)
	}
	if (pol.MonthlyCap != nil && n.Month >= *pol.MonthlyCap) || (pol.LifetimeCap != nil && n.Lifetime >= *pol.LifetimeCap) {
		return 0, true, nil
	}
	return points, false, nil
}

// EarnUndoneTx is the hook of a reversal or a cancel of an earn
// (earning.Service.Referrals), in its transaction: a referral that this
// earn qualified and whose rewards are still on hold is cancelled, and so
// are its pending rewards (ledger.CancelTx). After the hold the rewards
// are the users' (the referral is rewarded, or due for it): nothing
// changes. A partial reversal cancels too: the qualifying purchase was
// (partly) refunded. A cancelled referral is final.
func (s *Service) EarnUndoneTx(ctx context.Context, tx bun.Tx, p *partner.Partner, earnEntryID int64) error {
	now := s.Now().UTC()
	var refs []Referral
	err := tx.NewRaw(`UPDATE referrals SET status = 'cancelled', cancelled_at = ?
		WHERE partner_id = ? AND qualifying_entry_id = ? AND status = 'qualified' AND hold_until > ?
		RETURNING *`, now, p.ID, earnEntryID, now).Scan(ctx, &refs)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("cancel referral: %w", err)
	}
	for i := range refs {
		r := &refs[i]
		for _, side := range []struct {
			name   string
			points int64
		}{{"referrer", r.ReferrerPoints}, {"referee", r.RefereePoints}} {
			if side.points == 0 {
				continue
			}
			_, err := s.Ledger.CancelTx(ctx, tx, p.ID, rewardReference(r.ID, side.name), "referral cancelled: the qualifying earn was undone")
			// Activated already (the lots job ran a moment early for
			// this clock): the points stay, as after the hold.
			if err != nil && !apperr.Is(err, apperr.CodeEarnNotPending) {
				return fmt.Errorf("cancel the %s reward of referral %d: %w", side.name, r.ID, err)
			}
		}
		if err := s.emit(ctx, tx, event.ReferralCancelled, r, map[string]any{"earnEntryId": earnEntryID}); err != nil {
			return err
		}
	}
	return nil
}

// RewardDueTx marks up to batch referrals whose hold ended by now as
// rewarded, with their referral.rewarded events, in tx. Their reward
// lots are activated by the lots job (ledger.ActivateDueTx) on the same
// date; this only settles the referral. Rows are taken with SKIP LOCKED,
// so a reversal cancelling one at the same moment is never waited for.
func (s *Service) RewardDueTx(ctx context.Context, tx bun.Tx, now time.Time, batch int) (int, error) {
	var refs []Referral
	err := tx.NewRaw(`UPDATE referrals r SET status = 'rewarded', rewarded_at = ?
		FROM (SELECT partner_id, id FROM referrals WHERE status = 'qualified' AND hold_until <= ?
		      ORDER BY hold_until LIMIT ? FOR UPDATE SKIP LOCKED) due
		WHERE r.partner_id = due.partner_id AND r.id = due.id
		RETURNING r.*`, now.UTC(), now.UTC(), batch).Scan(ctx, &refs)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("settle due referrals: %w", err)
	}
	for i := range refs {
		if err := s.emit(ctx, tx, event.ReferralRewarded, &refs[i], nil); err != nil {
			return 0, err
		}
	}
	return len(refs), nil
}

// emit writes a referral event: ids and amounts only.
func (s *Service) emit(ctx context.Context, tx bun.Tx, typ string, r *Referral, extra map[string]any) error {
	data := map[string]any{
		"referralId": r.ID, "referrerId": r.ReferrerID, "refereeId": r.RefereeID, "status": r.Status,
		"referrerPoints": r.ReferrerPoints, "refereePoints": r.RefereePoints, "capped": r.Capped,
	}
	for k, v := range extra {
		data[k] = v
	}
	_, err := s.Events.EmitTx(ctx, tx, r.PartnerID, typ, &r.ReferrerID, data)
	return err
}
