package referral

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/event"
	"github.com/perkshq/perks/internal/user"
)

// Attributed is the outcome of AttributeTx.
type Attributed struct {
	Referral *Referral
	// Already: the user was attributed to this same referrer before
	// (a retried upsert or a second tap): nothing changed.
	Already bool
}

// AllowApply takes one token of the user's applyReferralCode bucket:
// RATE_LIMITED (with Retry-After) past it. Every attempt counts, failed
// ones too, so codes cannot be guessed by trying.
func (s *Service) AllowApply(userID uuid.UUID) error {
	if s.Limiter == nil {
		return nil
	}
	lim := s.ApplyLimit
	if lim.PerMinute == 0 {
		lim = DefaultApplyLimit
	}
	res := s.Limiter.Allow("referral-apply:"+userID.String(), lim)
	if res.Allowed {
		return nil
	}
	secs := max(int(res.RetryAfter.Round(time.Second)/time.Second), 1)
	return &apperr.Error{Code: apperr.CodeRateLimited, Message: fmt.Sprintf("too many referral codes tried; retry in %d seconds", secs), RetryAfterSeconds: secs}
}

// AttributeTx attributes referee to the owner of code, in tx, once: the
// first attribution wins and later ones are REFERRAL_ALREADY_ATTRIBUTED
// (the same referrer again answers Already, so retries are safe). field
// names the code's input in errors ("referredBy", "code").
//
// Guards, in order: a code that cannot be one (INVALID_FIELD), the
// attribution window after the referee's creation
// (REFERRAL_WINDOW_CLOSED), an unknown code (REFERRAL_CODE_NOT_FOUND),
// the referee's own code or a code of a user with the same email, compared
// by keyed hash with the "+tag" of the local part dropped (SELF_REFERRAL),
// and a referrer whose chain of referrers contains the referee
// (REFERRAL_LOOP).
//
// Attributions of one partner are serialised by a transaction-level
// advisory lock, taken before anything is read: two users applying each
// other's code at once cannot both pass the loop check, and two codes
// applied at once for one user give one referral (the unique referee
// index is the second line). Attributions are sign-up events, rare next to
// earns; the lock is held only for the attribution's transaction.
func (s *Service) AttributeTx(ctx context.Context, tx bun.Tx, partnerID uuid.UUID, referee *user.User, field, code, source string) (*Attributed, error) {
	c, ok := NormalizeCode(code)
	if !ok {
		return nil, apperr.Field(apperr.CodeInvalidField, field, "%s must be a referral code: 3 to 64 letters, digits, '_' or '-'", field)
	}
	now := s.Now().UTC()
	pol, _, err := s.Policy(ctx, tx, partnerID)
	if err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended(?, 0))`, "referral:"+partnerID.String()); err != nil {
		return nil, fmt.Errorf("lock referral attribution: %w", err)
	}
	var referrerID uuid.UUID
	err = tx.NewRaw(`SELECT user_id FROM referral_codes WHERE partner_id = ? AND code = ?`, partnerID, c).Scan(ctx, &referrerID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apperr.Field(apperr.CodeReferralCodeNotFound, field, "no user has this referral code")
	}
	if err != nil {
		return nil, fmt.Errorf("find referral code: %w", err)
	}
	prev := new(Referral)
	err = tx.NewSelect().Model(prev).Where("partner_id = ? AND referee_id = ?", partnerID, referee.ID).Scan(ctx)
	switch {
	case err == nil && prev.ReferrerID == referrerID:
		return &Attributed{Referral: prev, Already: true}, nil
	case err == nil:
		return nil, apperr.New(apperr.CodeReferralAlreadyAttributed, "the user already has a referrer")
	case !errors.Is(err, sql.ErrNoRows):
		return nil, fmt.Errorf("load referral of user: %w", err)
	}
	if now.After(referee.CreatedAt.AddDate(0, 0, pol.AttributionWindowDays)) {
		return nil, apperr.New(apperr.CodeReferralWindowClosed, "referral codes can be applied up to %d days after joining", pol.AttributionWindowDays)
	}
	if referrerID == referee.ID {
		return nil, apperr.Field(apperr.CodeSelfReferral, field, "this is the user's own referral code")
	}
	if referee.Email != nil {
		var email *string
		if err := tx.NewRaw(`SELECT email FROM users WHERE partner_id = ? AND id = ?`, partnerID, referrerID).Scan(ctx, &email); err != nil {
			return nil, fmt.Errorf("load referrer: %w", err)
		}
		if email != nil && string(s.EmailHash(partnerID, *email)) == string(s.EmailHash(partnerID, *referee.Email)) {
			return nil, apperr.Field(apperr.CodeSelfReferral, field, "this referral code belongs to a user with the same email address")
		}
	}
	var loop bool
	err = tx.NewRaw(`WITH RECURSIVE up (id, depth) AS (
			SELECT referrer_id, 1 FROM referrals WHERE partner_id = ? AND referee_id = ?
			UNION ALL
			SELECT r.referrer_id, up.depth + 1 FROM referrals r JOIN up ON r.referee_id = up.id
			WHERE r.partner_id = ? AND up.depth < 1000
		) SELECT EXISTS (SELECT 1 FROM up WHERE id = ?)`, partnerID, referrerID, partnerID, referee.ID).Scan(ctx, &loop)
	if err != nil {
		return nil, fmt.Errorf("check referral loop: %w", err)
	}
	if loop {
		return nil, apperr.Field(apperr.CodeReferralLoop, field, "the code's owner was referred by this user")
	}
	r := &Referral{PartnerID: partnerID, ReferrerID: referrerID, RefereeID: referee.ID, Code: c, Source: source, Status: StatusPending, CreatedAt: now}
	res, err := tx.NewInsert().Model(r).On("CONFLICT (partner_id, referee_id) DO NOTHING").Returning("id").Exec(ctx)
	if err != nil {
		return nil, fmt.Errorf("insert referral: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, apperr.New(apperr.CodeReferralAlreadyAttributed, "the user already has a referrer")
	}
	if _, err := s.Events.EmitTx(ctx, tx, partnerID, event.ReferralCreated, &referrerID, map[string]any{
		"referralId": r.ID, "referrerId": referrerID, "refereeId": referee.ID, "source": source,
	}); err != nil {
		return nil, err
	}
	if err := s.velocityTx(ctx, tx, partnerID, pol, referrerID, now); err != nil {
		return nil, err
	}
	return &Attributed{Referral: r}, nil
}

// velocityTx emits referral.velocity_exceeded when this attribution is the
// one that takes the referrer past the policy's velocityLimit within its
// window (once per crossing, not for every referral after it).
func (s *Service) velocityTx(ctx context.Context, tx bun.Tx, partnerID uuid.UUID, pol Policy, referrerID uuid.UUID, now time.Time) error {
	if pol.VelocityLimit == nil {
		return nil
	}
	since := now.Add(-time.Duration(pol.VelocityWindowMinutes) * time.Minute)
	var n int
	if err := tx.NewRaw(`SELECT count(*) FROM referrals WHERE partner_id = ? AND referrer_id = ? AND created_at > ?`,
		partnerID, referrerID, since).Scan(ctx, &n); err != nil {
		return fmt.Errorf("count recent referrals: %w", err)
	}
	if n != *pol.VelocityLimit+1 {
		return nil
	}
	_, err := s.Events.EmitTx(ctx, tx, partnerID, event.ReferralVelocity, &referrerID, map[string]any{
		"referrerId": referrerID, "referrals": n, "windowMinutes": pol.VelocityWindowMinutes, "limit": *pol.VelocityLimit,
	})
	return err
}

// EmailHash is the keyed hash the self-referral guard compares: the
// address lower-cased, without a "+tag" in its local part
// (jo+1@x.com and Jo@x.com are one person). Only hashes are compared, so
// no email shows in an error or a log.
func (s *Service) EmailHash(partnerID uuid.UUID, email string) []byte {
	e := strings.ToLower(strings.TrimSpace(email))
	if at := strings.LastIndexByte(e, '@'); at > 0 {
		local, domain := e[:at], e[at:]
		if plus := strings.IndexByte(local, '+'); plus > 0 {
			local = local[:plus]
		}
		e = local + domain
	}
	return s.Keys.LookupHash("referral-email:"+partnerID.String(), e)
}
