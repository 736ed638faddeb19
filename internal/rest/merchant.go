package rest

import (
	"context"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
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

// merchantRedemptionView is one redemption of the merchant's history.
type merchantRedemptionView struct {
	VoucherID  uuid.UUID `json:"voucherId"`
	Gift       giftRef   `json:"gift"`
	RedeemedAt time.Time `json:"redeemedAt"`
	// Operator is the till operator's name (or address) in the merchant
	// portal, nil for a server-to-server redemption.
	Operator *string `json:"operator"`
}

type giftRef struct {
	SKU   string `json:"sku"`
	Title string `json:"title"`
}

// merchantRedemptions is the merchant portal's history over the merchant
// API: the redemptions of this credential's partner at this merchant,
// newest first, in keyset pages (the same service as the portal's page).
func (a *API) merchantRedemptions(w http.ResponseWriter, r *http.Request, m *merchant.Principal) error {
	q := r.URL.Query()
	p := voucher.HistoryParams{MerchantID: m.Merchant.ID, PartnerID: m.Partner.ID, Limit: 50}
	for _, f := range []struct {
		name string
		dst  *time.Time
	}{{"from", &p.From}, {"to", &p.To}} {
		if v := q.Get(f.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return apperr.Field(apperr.CodeInvalidField, f.name, "%s must be an RFC 3339 time such as 2026-11-25T00:00:00Z", f.name)
			}
			*f.dst = t
		}
	}
	if !p.From.IsZero() && !p.To.IsZero() && !p.From.Before(p.To) {
		return apperr.Field(apperr.CodeInvalidField, "to", "to must be after from")
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 200 {
			return apperr.Field(apperr.CodeInvalidField, "limit", "limit must be between 1 and 200")
		}
		p.Limit = n
	}
	if v := q.Get("cursor"); v != "" {
		at, id, ok := decodeRedemptionCursor(v)
		if !ok {
			return apperr.Field(apperr.CodeInvalidField, "cursor", "cursor is not one this API returned")
		}
		p.Before, p.BeforeID = at, id
	}
	rows, err := a.Vouchers.History(r.Context(), a.DB.Bun, p)
	if err != nil {
		return err
	}
	out := struct {
		Items      []merchantRedemptionView `json:"items"`
		NextCursor *string                  `json:"nextCursor"`
	}{Items: make([]merchantRedemptionView, 0, len(rows))}
	for i := range rows {
		v := merchantRedemptionView{VoucherID: rows[i].VoucherID, Gift: giftRef{SKU: rows[i].GiftSKU, Title: rows[i].GiftTitle}, RedeemedAt: rows[i].RedeemedAt}
		if rows[i].OperatorID != nil {
			op := rows[i].Operator()
			v.Operator = &op
		}
		out.Items = append(out.Items, v)
	}
	if len(rows) == p.Limit {
		last := rows[len(rows)-1]
		c := base64.RawURLEncoding.EncodeToString([]byte(last.RedeemedAt.UTC().Format(time.RFC3339Nano) + "|" + last.VoucherID.String()))
		out.NextCursor = &c
	}
	WriteJSON(w, http.StatusOK, out)
	return nil
}

func decodeRedemptionCursor(s string) (time.Time, uuid.UUID, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return time.Time{}, uuid.Nil, false
	}
	at, id, found := strings.Cut(string(b), "|")
	if !found {
		return time.Time{}, uuid.Nil, false
	}
	t, err1 := time.Parse(time.RFC3339Nano, at)
	u, err2 := uuid.Parse(id)
	return t, u, err1 == nil && err2 == nil
}
