package voucher

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/event"
)

// One-time redemption codes (seed 004's OTP handoff): the user asks for a
// code in the app and reads it to the merchant, who sends it with the
// voucher code.
const (
	OTPDigits      = 6
	OTPLifetime    = 5 * time.Minute
	MaxOTPAttempts = 5
)

// Redemption channels.
const (
	ChannelOnline   = "online"
	ChannelMerchant = "merchant"
)

// lockForUser loads and row-locks one of the user's vouchers.
func (s *Service) lockForUser(ctx context.Context, tx bun.Tx, partnerID, userID, id uuid.UUID) (*Voucher, error) {
	v := new(Voucher)
	err := tx.NewSelect().Model(v).Where("partner_id = ? AND user_id = ? AND id = ?", partnerID, userID, id).For("UPDATE").Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apperr.New(apperr.CodeVoucherNotFound, "voucher not found")
	}
	if err != nil {
		return nil, fmt.Errorf("lock voucher %s: %w", id, err)
	}
	return v, nil
}

func notActive(v *Voucher, now time.Time) error {
	return apperr.New(apperr.CodeVoucherNotActive, "the voucher is %s", v.EffectiveStatus(now))
}

// RedeemOnlineTx marks one of the user's online vouchers (a gift no
// merchant honours) as used, in the app. Errors: VOUCHER_NOT_FOUND,
// VOUCHER_NOT_ACTIVE, REDEMPTION_CHANNEL_MISMATCH (merchant vouchers are
// redeemed at the merchant with a one-time code).
func (s *Service) RedeemOnlineTx(ctx context.Context, tx bun.Tx, partnerID, userID, id uuid.UUID) (*Voucher, error) {
	now := s.Now().UTC()
	v, err := s.lockForUser(ctx, tx, partnerID, userID, id)
	if err != nil {
		return nil, err
	}
	if !v.Active(now) {
		return nil, notActive(v, now)
	}
	atMerchant, err := s.Catalog.HasMerchants(ctx, tx, partnerID, v.GiftID)
	if err != nil {
		return nil, err
	}
	if atMerchant {
		return nil, apperr.New(apperr.CodeWrongChannel, "this voucher is redeemed at a merchant: ask for a one-time code with requestRedemptionCode")
	}
	g, err := s.Catalog.GiftByID(ctx, tx, partnerID, v.GiftID)
	if err != nil {
		return nil, err
	}
	if err := s.markRedeemed(ctx, tx, v, g.SKU, nil, nil, now); err != nil {
		return nil, err
	}
	return v, nil
}

// markRedeemed moves a locked, active voucher to redeemed and records the
// event. The status condition is what makes a redemption racing a
// cancellation (or another till) end in exactly one state. operatorID is
// the merchant portal account that redeemed at the till, if any.
func (s *Service) markRedeemed(ctx context.Context, tx bun.Tx, v *Voucher, sku string, merchantID, operatorID *uuid.UUID, now time.Time) error {
	res, err := tx.NewUpdate().Model(v).
		Set("status = 'redeemed', redeemed_at = ?, redeemed_by_merchant_id = ?, redeemed_by_account_id = ?", now, merchantID, operatorID).
		Set("otp_mac = NULL, otp_expires_at = NULL, updated_at = ?", now).
		Where("partner_id = ? AND id = ? AND status = 'claimed'", v.PartnerID, v.ID).
		Returning("*").Exec(ctx)
	if err != nil {
		return fmt.Errorf("redeem voucher %s: %w", v.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notActive(v, now)
	}
	channel := ChannelOnline
	if merchantID != nil {
		channel = ChannelMerchant
	}
	_, err = s.Events.EmitTx(ctx, tx, v.PartnerID, event.VoucherRedeemed, &v.UserID, map[string]any{
		"voucherId": v.ID, "userId": v.UserID, "giftId": v.GiftID, "sku": sku, "channel": channel,
		"merchantId": merchantID, "redeemedAt": now,
	})
	return err
}

// OTP is a freshly issued one-time redemption code.
type OTP struct {
	Code      string
	ExpiresAt time.Time
}

// RequestOTPTx issues a new one-time code for a merchant voucher of the
// user, valid OTPLifetime. It replaces any earlier code and resets the
// attempt counter (so it also unlocks a voucher locked by wrong guesses).
// Only a keyed MAC of the code is stored.
func (s *Service) RequestOTPTx(ctx context.Context, tx bun.Tx, partnerID, userID, id uuid.UUID) (*OTP, error) {
	now := s.Now().UTC()
	v, err := s.lockForUser(ctx, tx, partnerID, userID, id)
	if err != nil {
		return nil, err
	}
	if !v.Active(now) {
		return nil, notActive(v, now)
	}
	atMerchant, err := s.Catalog.HasMerchants(ctx, tx, partnerID, v.GiftID)
	if err != nil {
		return nil, err
	}
	if !atMerchant {
		return nil, apperr.New(apperr.CodeWrongChannel, "this voucher is redeemed online: use redeemVoucher")
	}
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		return nil, err
	}
	otp := &OTP{Code: fmt.Sprintf("%06d", n.Int64()), ExpiresAt: now.Add(OTPLifetime)}
	_, err = tx.NewUpdate().Model(v).
		Set("otp_mac = ?, otp_expires_at = ?, otp_attempts = 0, updated_at = ?", s.otpMAC(v, otp.Code), otp.ExpiresAt, now).
		WherePK().Exec(ctx)
	if err != nil {
		return nil, fmt.Errorf("store otp of voucher %s: %w", id, err)
	}
	return otp, nil
}

// otpMAC is HMAC-SHA256 under a key derived from the master key, bound to
// the partner and the voucher: a leaked table does not let anyone test the
// million possible codes offline, and a MAC copied to another voucher is
// worthless.
func (s *Service) otpMAC(v *Voucher, code string) []byte {
	return s.Keys.MAC([]byte("voucher-otp/v1"), v.PartnerID[:], v.ID[:], []byte(code))
}

// MerchantView is what a merchant may see of a voucher: no personal data
// beyond the owner's display name.
type MerchantView struct {
	Voucher          *Voucher
	GiftSKU          string
	GiftTitle        string
	OwnerDisplayName *string
}

// lookupSQL finds a voucher by code among the gifts the merchant honours;
// any other voucher, of this partner or another, does not exist for it.
const lookupSQL = `SELECT v.*, g.sku AS gift_sku, g.title AS gift_title, u.display_name AS owner_display_name
	FROM vouchers v
	JOIN gifts g ON g.partner_id = v.partner_id AND g.id = v.gift_id
	JOIN users u ON u.partner_id = v.partner_id AND u.id = v.user_id
	WHERE v.partner_id = ? AND v.code = ?
	  AND EXISTS (SELECT 1 FROM gift_merchants gm WHERE gm.partner_id = v.partner_id AND gm.gift_id = v.gift_id AND gm.merchant_id = ?)`

type lookupRow struct {
	Voucher          `bun:",extend"`
	GiftSKU          string  `bun:"gift_sku"`
	GiftTitle        string  `bun:"gift_title"`
	OwnerDisplayName *string `bun:"owner_display_name"`
}

// ForMerchant looks a voucher up by code for a merchant (a check at the
// till: status, gift, owner's display name).
func (s *Service) ForMerchant(ctx context.Context, db bun.IDB, partnerID, merchantID uuid.UUID, code string) (*MerchantView, error) {
	var row lookupRow
	err := db.NewRaw(lookupSQL, partnerID, code, merchantID).Scan(ctx, &row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apperr.New(apperr.CodeVoucherNotFound, "no voucher with this code for your merchant")
	}
	if err != nil {
		return nil, fmt.Errorf("look up voucher by code: %w", err)
	}
	return &MerchantView{Voucher: &row.Voucher, GiftSKU: row.GiftSKU, GiftTitle: row.GiftTitle, OwnerDisplayName: row.OwnerDisplayName}, nil
}

// AttemptError is a wrong one-time code that was counted: the transaction
// holds the incremented attempt counter and the caller must commit it
// while answering with the wrapped error (OTP_INVALID, or OTP_LOCKED once
// the attempts are used up). Rolling it back would let a guesser try
// forever.
type AttemptError struct{ Err *apperr.Error }

func (e *AttemptError) Error() string { return e.Err.Error() }

// Unwrap exposes the caller-facing error to apperr.As.
func (e *AttemptError) Unwrap() error { return e.Err }

// MustCommit marks the error as one whose transaction must commit.
func (e *AttemptError) MustCommit() bool { return true }

var otpRE = regexp.MustCompile(`^[0-9]{6}$`)

// ValidateOTP checks the shape of a one-time code.
func ValidateOTP(field, otp string) error {
	if !otpRE.MatchString(otp) {
		return apperr.Field(apperr.CodeInvalidField, field, "%s must be the %d digits the user's app shows", field, OTPDigits)
	}
	return nil
}

// RedeemAtMerchantTx redeems a voucher at a merchant's checkout with the
// one-time code its user handed over. The voucher row is locked before the
// code is evaluated, so concurrent guesses are evaluated one at a time and
// at most MaxOTPAttempts wrong codes are ever compared until the user asks
// for a new one: 100 parallel guesses evaluate at most 5. A wrong code
// returns *AttemptError (commit it); a missing or expired code is not
// counted.
func (s *Service) RedeemAtMerchantTx(ctx context.Context, tx bun.Tx, partnerID, merchantID uuid.UUID, code, otp string) (*MerchantView, error) {
	return s.redeemAtMerchantTx(ctx, tx, partnerID, merchantID, nil, code, otp)
}

// RedeemAtTillTx is RedeemAtMerchantTx for the merchant portal's till: the
// same checks, attempt counting and locking, and the redemption records
// the operator's account (operatorID) for the history.
func (s *Service) RedeemAtTillTx(ctx context.Context, tx bun.Tx, partnerID, merchantID, operatorID uuid.UUID, code, otp string) (*MerchantView, error) {
	return s.redeemAtMerchantTx(ctx, tx, partnerID, merchantID, &operatorID, code, otp)
}

func (s *Service) redeemAtMerchantTx(ctx context.Context, tx bun.Tx, partnerID, merchantID uuid.UUID, operatorID *uuid.UUID, code, otp string) (*MerchantView, error) {
	if err := ValidateOTP("otp", otp); err != nil {
		return nil, err
	}
	now := s.Now().UTC()
	var row lookupRow
	err := tx.NewRaw(lookupSQL+` FOR UPDATE OF v`, partnerID, code, merchantID).Scan(ctx, &row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apperr.New(apperr.CodeVoucherNotFound, "no voucher with this code for your merchant")
	}
	if err != nil {
		return nil, fmt.Errorf("lock voucher by code: %w", err)
	}
	v := &row.Voucher
	view := &MerchantView{Voucher: v, GiftSKU: row.GiftSKU, GiftTitle: row.GiftTitle, OwnerDisplayName: row.OwnerDisplayName}
	switch {
	case !v.Active(now):
		return nil, notActive(v, now)
	case v.OTPMAC == nil:
		return nil, apperr.New(apperr.CodeOTPInvalid, "no one-time code was requested for this voucher: the user asks for one in the app")
	case v.OTPAttempts >= MaxOTPAttempts:
		return nil, apperr.New(apperr.CodeOTPLocked, "too many wrong codes: the user must request a new one")
	case !now.Before(*v.OTPExpiresAt):
		return nil, apperr.New(apperr.CodeOTPExpired, "the one-time code expired: the user requests a new one")
	}
	if !hmac.Equal(s.otpMAC(v, otp), v.OTPMAC) {
		if _, err := tx.NewUpdate().Model(v).Set("otp_attempts = otp_attempts + 1, updated_at = ?", now).
			WherePK().Returning("otp_attempts").Exec(ctx); err != nil {
			return nil, fmt.Errorf("count otp attempt: %w", err)
		}
		left := MaxOTPAttempts - v.OTPAttempts
		if left <= 0 {
			return nil, &AttemptError{apperr.New(apperr.CodeOTPInvalid, "wrong one-time code; the code is now locked and the user must request a new one")}
		}
		return nil, &AttemptError{apperr.New(apperr.CodeOTPInvalid, "wrong one-time code; %d attempts left", left)}
	}
	if err := s.markRedeemed(ctx, tx, v, row.GiftSKU, &merchantID, operatorID, now); err != nil {
		return nil, err
	}
	return view, nil
}
