package rest

import (
	"context"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/auth"
	"github.com/perkshq/perks/internal/catalog"
	"github.com/perkshq/perks/internal/idempotency"
	"github.com/perkshq/perks/internal/merchant"
	"github.com/perkshq/perks/internal/request"
	"github.com/perkshq/perks/internal/voucher"
)

// MerchantHandler is a handler for an authenticated merchant.
type MerchantHandler func(w http.ResponseWriter, r *http.Request, m *merchant.Principal) error

// Merchant wraps h with merchant authentication (seed 004: X-API-Key,
// X-Timestamp, base64 Ed25519 X-Signature over the canonical string of
// merchant.Canonical) over the raw body. Reads are never refused as
// replays (a till polling a voucher repeats its signed GET); a write routed
// here would be recorded before it runs, so writes use MerchantWrite.
func (a *API) Merchant(h MerchantHandler) http.Handler { return a.merchant(false, h) }

// merchant is Merchant; with deferReplay the handler must remember a
// write's signature (MerchantWrite does, in its transaction).
func (a *API) merchant(deferReplay bool, h MerchantHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := ReadBody(r, a.MaxBodyBytes)
		if err != nil {
			WriteError(w, r, a.Log, err)
			return
		}
		m, err := a.Merchants.Authenticate(r.Context(), a.DB.Bun, merchant.SignedRequest{
			APIKey: r.Header.Get(merchant.HeaderAPIKey), Timestamp: r.Header.Get(merchant.HeaderTimestamp),
			Signature: r.Header.Get(merchant.HeaderSignature), IdempotencyKey: r.Header.Get(merchant.HeaderIdempotencyKey),
			Method: r.Method, PathQuery: r.URL.RequestURI(), Body: body, DeferReplay: deferReplay,
		})
		if err != nil {
			WriteError(w, r, a.Log, err)
			return
		}
		request.From(r.Context()).SetPartner(m.Partner.ID.String())
		MarkEnvironment(w, m.Partner)
		ctx := context.WithValue(r.Context(), bodyKey{}, body)
		if err := h(w, r.WithContext(ctx), m); err != nil {
			WriteError(w, r, a.Log, err)
		}
	})
}

// MerchantWriteHandler does a merchant write inside tx. It returns the
// status, the value to encode, and the user the write concerns (so erasing
// the user erases the stored response).
type MerchantWriteHandler func(ctx context.Context, tx bun.Tx, r *http.Request, m *merchant.Principal) (int, any, *uuid.UUID, error)

// MerchantWrite wraps a merchant write: authentication, one transaction and
// the idempotency layer, keyed per merchant (an Idempotency-Key of one
// merchant never replays another's) and claimed up front. A failure
// normally rolls everything back and stores nothing; a failure marked
// idempotency.MustCommit commits its effects and still stores nothing, so a
// retry with a fresh signature runs again.
//
// Replays (docs/auth.md, "Replays, retries and request binding"): the
// signature is remembered in the write's transaction after the key claim
// and before the work. A resend of the same signed request with its key
// therefore gets the stored answer (Idempotent-Replayed: true); without a
// key it is refused with SIGNATURE_REPLAYED before any work, so a captured
// wrong one-time code is never counted twice. A write that fails rolls its
// entry back and is then remembered on the pool (a MustCommit failure
// commits it with the counted attempt), so a refused request cannot be
// replayed later, when it might succeed.
func (a *API) MerchantWrite(h MerchantWriteHandler) http.Handler {
	return a.merchant(true, func(rw http.ResponseWriter, r *http.Request, m *merchant.Principal) error {
		body := Body(r.Context())
		key := r.Header.Get(HeaderIdempotencyKey)
		req := idempotency.Request{
			PartnerID:   m.Partner.ID,
			Fingerprint: idempotency.Fingerprint([]byte(r.Method), []byte(r.URL.RequestURI()), body),
			Now:         a.now(),
		}
		if key != "" {
			if err := idempotency.ValidateKey(HeaderIdempotencyKey, key); err != nil {
				return err
			}
			req.Keys = []string{"merchant:" + m.Merchant.ID.String() + ":" + key}
		}
		res, err := idempotency.Run(r.Context(), a.DB.Bun, req, func(ctx context.Context, op *idempotency.Op) (idempotency.Response, error) {
			if err := a.Merchants.Remember(ctx, op.Tx, m); err != nil {
				return idempotency.Response{}, err
			}
			st, v, userID, err := h(ctx, op.Tx, r, m)
			if err != nil {
				return idempotency.Response{}, err
			}
			out, err := encodeBody(v)
			return idempotency.Response{Status: st, Body: out, UserID: userID}, err
		})
		if err != nil && !apperr.Is(err, apperr.CodeSignatureReplayed) && !apperr.Is(err, apperr.CodeSignatureReused) {
			if rerr := a.Merchants.Remember(context.WithoutCancel(r.Context()), a.DB.Bun, m); rerr != nil && !auth.IsAuthError(rerr) {
				a.Log.ErrorContext(r.Context(), "replay cache after failed merchant write", "error", rerr.Error())
			}
		}
		if err != nil {
			return err
		}
		if res.Replayed {
			rw.Header().Set("Idempotent-Replayed", "true")
		}
		writeRaw(rw, res.Status, res.Body)
		return nil
	})
}

type merchantGiftView struct {
	SKU   string `json:"sku"`
	Title string `json:"title"`
}

type merchantOwnerView struct {
	DisplayName *string `json:"displayName"`
}

// merchantVoucherView is what a merchant sees: status, gift, the owner's
// display name, nothing else personal.
type merchantVoucherView struct {
	ID         uuid.UUID        `json:"voucherId"`
	Code       string           `json:"code"`
	Status     string           `json:"status"`
	Redeemable bool             `json:"redeemable"`
	Gift       merchantGiftView `json:"gift"`
	// Owner is in lookups only: a redemption's answer is stored for
	// idempotent replay, and stored answers carry no personal data.
	Owner      *merchantOwnerView `json:"owner,omitempty"`
	ClaimedAt  time.Time          `json:"claimedAt"`
	ExpiresAt  *time.Time         `json:"expiresAt"`
	RedeemedAt *time.Time         `json:"redeemedAt"`
}

func newMerchantVoucherView(mv *voucher.MerchantView, now time.Time) merchantVoucherView {
	v := mv.Voucher
	return merchantVoucherView{
		ID: v.ID, Code: *v.Code, Status: string(v.EffectiveStatus(now)), Redeemable: v.Active(now),
		Gift: merchantGiftView{SKU: mv.GiftSKU, Title: mv.GiftTitle}, Owner: &merchantOwnerView{DisplayName: mv.OwnerDisplayName},
		ClaimedAt: v.ClaimedAt, ExpiresAt: v.ExpiresAt, RedeemedAt: v.RedeemedAt,
	}
}

// merchantVoucher checks a voucher at the till by its code.
func (a *API) merchantVoucher(w http.ResponseWriter, r *http.Request, m *merchant.Principal) error {
	code := r.PathValue("code")
	if err := catalog.ValidateCode("code", code); err != nil {
		return err
	}
	mv, err := a.Vouchers.ForMerchant(r.Context(), a.DB.Bun, m.Partner.ID, m.Merchant.ID, code)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, newMerchantVoucherView(mv, a.now()))
	return nil
}

type redeemRequest struct {
	Code *string `json:"code"`
	OTP  *string `json:"otp"`
}

// merchantRedeem redeems a voucher with the one-time code its user handed
// over at the checkout (seed 004).
func (a *API) merchantRedeem(ctx context.Context, tx bun.Tx, r *http.Request, m *merchant.Principal) (int, any, *uuid.UUID, error) {
	var req redeemRequest
	if err := DecodeJSON(r, Body(r.Context()), &req); err != nil {
		return 0, nil, nil, err
	}
	if req.Code == nil || *req.Code == "" {
		return 0, nil, nil, apperr.Field(apperr.CodeMissingField, "code", "code is required: the voucher code the user shows")
	}
	if err := catalog.ValidateCode("code", *req.Code); err != nil {
		return 0, nil, nil, err
	}
	if req.OTP == nil || *req.OTP == "" {
		return 0, nil, nil, apperr.Field(apperr.CodeMissingField, "otp", "otp is required: the one-time code the user reads out")
	}
	mv, err := a.Vouchers.RedeemAtMerchantTx(ctx, tx, m.Partner.ID, m.Merchant.ID, *req.Code, *req.OTP)
	if err != nil {
		return 0, nil, nil, err
	}
	view := newMerchantVoucherView(mv, a.now())
	view.Owner = nil
	return http.StatusCreated, view, &mv.Voucher.UserID, nil
}
