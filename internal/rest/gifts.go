package rest

import (
	"bytes"
	"context"
	"encoding/json"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/auth"
	"github.com/perkshq/perks/internal/catalog"
	"github.com/perkshq/perks/internal/locale"
	"github.com/perkshq/perks/internal/voucher"
)

// registerCatalog mounts the partner's catalog, code pool and voucher
// routes and the merchant routes.
func (a *API) registerCatalog(rt *Router) {
	rt.Handle(http.MethodPut, "/integrations/gifts/{sku}", a.PartnerWrite(a.putGift))
	rt.Handle(http.MethodGet, "/integrations/gifts", a.Partner(a.listGifts))
	rt.Handle(http.MethodGet, "/integrations/gifts/{sku}", a.Partner(a.getGift))
	rt.Handle(http.MethodDelete, "/integrations/gifts/{sku}", a.PartnerWrite(a.retireGift))
	// Up to 100,000 codes do not fit the default body limit: this route
	// alone accepts MaxUploadBytes (PERKS_MAX_UPLOAD_BYTES, 8 MiB).
	rt.Handle(http.MethodPost, "/integrations/gifts/{sku}/codes", a.PartnerWriteLimit(a.uploadLimit(), a.uploadCodes))
	rt.Handle(http.MethodGet, "/integrations/vouchers/{id}", a.Partner(a.getVoucher))
	rt.Handle(http.MethodPost, "/integrations/vouchers/{id}/cancel", a.PartnerWrite(a.cancelVoucher))
	rt.Handle(http.MethodGet, "/merchant/vouchers/{code}", a.Merchant(a.merchantVoucher))
	rt.Handle(http.MethodPost, "/merchant/redemptions", a.MerchantWrite(a.merchantRedeem))
	rt.Handle(http.MethodGet, "/merchant/redemptions", a.Merchant(a.merchantRedemptions))
}

// uploadLimit is the body limit of code uploads (the default when unset).
func (a *API) uploadLimit() int64 {
	if a.MaxUploadBytes > 0 {
		return a.MaxUploadBytes
	}
	return a.MaxBodyBytes
}

type giftRequest struct {
	Title                  *string         `json:"title"`
	Description            *string         `json:"description"`
	ImageURL               *string         `json:"imageUrl"`
	Category               *string         `json:"category"`
	CostPoints             json.RawMessage `json:"costPoints"`
	Stock                  json.RawMessage `json:"stock"`
	PerUserLimit           json.RawMessage `json:"perUserLimit"`
	VisibleFrom            json.RawMessage `json:"visibleFrom"`
	VisibleUntil           json.RawMessage `json:"visibleUntil"`
	ClaimableFrom          json.RawMessage `json:"claimableFrom"`
	ClaimableUntil         json.RawMessage `json:"claimableUntil"`
	Countries              []string        `json:"countries"`
	CodeSource             *string         `json:"codeSource"`
	CodePattern            *string         `json:"codePattern"`
	VoucherLifetimeSeconds json.RawMessage `json:"voucherLifetimeSeconds"`
	RefundOnExpiry         bool            `json:"refundOnExpiry"`
	Merchants              []string        `json:"merchants"`
	Position               json.RawMessage `json:"position"`
	MinTier                *string         `json:"minTier"`
	// Translations give title and description per locale (docs/catalog.md,
	// "Locales"); omitted or null: none.
	Translations locale.Translations `json:"translations"`
}

type giftView struct {
	ID          uuid.UUID `json:"id"`
	SKU         string    `json:"sku"`
	Title       string    `json:"title"`
	Description string    `json:"description"`
	ImageURL    string    `json:"imageUrl"`
	Category    string    `json:"category"`
	CostPoints  int64     `json:"costPoints"`
	// Stock is the total ever available (null: unlimited); remaining is
	// stock - claimed.
	Stock                  *int       `json:"stock"`
	Claimed                int        `json:"claimed"`
	Remaining              *int       `json:"remaining"`
	PerUserLimit           *int       `json:"perUserLimit"`
	VisibleFrom            *time.Time `json:"visibleFrom"`
	VisibleUntil           *time.Time `json:"visibleUntil"`
	ClaimableFrom          *time.Time `json:"claimableFrom"`
	ClaimableUntil         *time.Time `json:"claimableUntil"`
	Countries              []string   `json:"countries"`
	CodeSource             string     `json:"codeSource"`
	CodePattern            *string    `json:"codePattern"`
	CodesAvailable         *int       `json:"codesAvailable"`
	VoucherLifetimeSeconds *int       `json:"voucherLifetimeSeconds"`
	RefundOnExpiry         bool       `json:"refundOnExpiry"`
	Merchants              []string   `json:"merchants"`
	Position               int        `json:"position"`
	MinTier                *string    `json:"minTier"`
	// Translations is always an object ({} when none).
	Translations locale.Translations `json:"translations"`
	Retired      bool                `json:"retired"`
	RetiredAt    *time.Time          `json:"retiredAt"`
	CreatedAt    time.Time           `json:"createdAt"`
	UpdatedAt    time.Time           `json:"updatedAt"`
}

func newGiftView(g *catalog.Gift, merchants []string) giftView {
	v := giftView{
		ID: g.ID, SKU: g.SKU, Title: g.Title, Description: g.Description, ImageURL: g.ImageURL, Category: g.Category,
		CostPoints: g.CostPoints, Stock: g.StockTotal, Claimed: g.ClaimedCount, Remaining: g.Remaining(),
		PerUserLimit: g.PerUserLimit, VisibleFrom: g.VisibleFrom, VisibleUntil: g.VisibleUntil,
		ClaimableFrom: g.ClaimableFrom, ClaimableUntil: g.ClaimableUntil, Countries: g.Countries,
		CodeSource: g.CodeSource, CodePattern: g.CodePattern, VoucherLifetimeSeconds: g.VoucherLifetimeSeconds,
		RefundOnExpiry: g.RefundOnExpiry, Merchants: merchants, Position: g.Position, MinTier: g.MinTier,
		Retired: g.RetiredAt != nil, RetiredAt: g.RetiredAt, CreatedAt: g.CreatedAt, UpdatedAt: g.UpdatedAt,
		Translations: g.Translations,
	}
	if v.Translations == nil {
		v.Translations = locale.Translations{}
	}
	if v.Countries == nil {
		v.Countries = []string{}
	}
	if v.Merchants == nil {
		v.Merchants = []string{}
	}
	if g.CodeSource == catalog.SourcePool {
		n := g.CodesAvailable
		v.CodesAvailable = &n
	}
	return v
}

// parseIntIn reads an optional whole number (null or absent: nil) and
// checks its range.
func parseIntIn(field string, raw json.RawMessage, min, max int64) (*int64, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	s := string(bytes.TrimSpace(raw))
	if !integerRE.MatchString(s) {
		return nil, apperr.Field(apperr.CodeInvalidField, field, "%s must be a whole number, not %s", field, truncate(s, 32))
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < min || n > max {
		return nil, apperr.Field(apperr.CodeInvalidField, field, "%s must be a whole number from %d to %d", field, min, max)
	}
	return &n, nil
}

func intPtr(n *int64) *int {
	if n == nil {
		return nil
	}
	v := int(*n)
	return &v
}

// putGift creates (201) or replaces (200) a gift. Replace means replace:
// omitted optional fields become unset (stock: unlimited, merchants: none).
func (a *API) putGift(w *Write) (int, any, error) {
	sku := w.R.PathValue("sku")
	if err := catalog.ValidateSKU("sku", sku); err != nil {
		return 0, nil, err
	}
	var req giftRequest
	if err := DecodeJSON(w.R, w.Body, &req); err != nil {
		return 0, nil, err
	}
	if req.Title == nil {
		return 0, nil, apperr.Field(apperr.CodeMissingField, "title", "title is required")
	}
	if len(req.CostPoints) == 0 || string(req.CostPoints) == "null" {
		return 0, nil, apperr.Field(apperr.CodeMissingField, "costPoints", "costPoints is required")
	}
	cost, err := parseInt("costPoints", req.CostPoints)
	if err != nil {
		return 0, nil, err
	}
	if req.CodeSource == nil {
		return 0, nil, apperr.Field(apperr.CodeMissingField, "codeSource", "codeSource is required: pool, generated or none")
	}
	in := catalog.GiftInput{
		Title: *req.Title, CostPoints: cost, Countries: req.Countries, CodeSource: *req.CodeSource,
		RefundOnExpiry: req.RefundOnExpiry, Merchants: req.Merchants, MinTier: req.MinTier, Translations: req.Translations,
	}
	if req.Description != nil {
		in.Description = *req.Description
	}
	if req.ImageURL != nil {
		in.ImageURL = *req.ImageURL
	}
	if req.Category != nil {
		in.Category = *req.Category
	}
	if req.CodePattern != nil {
		in.CodePattern = *req.CodePattern
	}
	ints := []struct {
		field    string
		raw      json.RawMessage
		min, max int64
		dst      **int
	}{
		{"stock", req.Stock, 0, catalog.MaxStock, &in.Stock},
		{"perUserLimit", req.PerUserLimit, 1, 1<<31 - 1, &in.PerUserLimit},
		{"voucherLifetimeSeconds", req.VoucherLifetimeSeconds, catalog.MinLifetimeSeconds, catalog.MaxLifetimeSeconds, &in.VoucherLifetimeSeconds},
	}
	for _, f := range ints {
		n, err := parseIntIn(f.field, f.raw, f.min, f.max)
		if err != nil {
			return 0, nil, err
		}
		*f.dst = intPtr(n)
	}
	pos, err := parseIntIn("position", req.Position, -1_000_000, 1_000_000)
	if err != nil {
		return 0, nil, err
	}
	if pos != nil {
		in.Position = int(*pos)
	}
	for _, t := range []struct {
		field string
		raw   json.RawMessage
		dst   **time.Time
	}{
		{"visibleFrom", req.VisibleFrom, &in.VisibleFrom}, {"visibleUntil", req.VisibleUntil, &in.VisibleUntil},
		{"claimableFrom", req.ClaimableFrom, &in.ClaimableFrom}, {"claimableUntil", req.ClaimableUntil, &in.ClaimableUntil},
	} {
		if *t.dst, err = parseTime(t.field, t.raw); err != nil {
			return 0, nil, err
		}
	}
	g, created, err := a.Catalog.PutGiftTx(w.Ctx, w.Tx, w.Partner.Partner.ID, sku, in)
	if err != nil {
		return 0, nil, err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return status, newGiftView(g, in.Merchants), nil
}

func (a *API) giftViews(ctx context.Context, partnerID uuid.UUID, gifts []catalog.Gift) ([]giftView, error) {
	ids := make([]uuid.UUID, len(gifts))
	for i := range gifts {
		ids[i] = gifts[i].ID
	}
	merchants := map[uuid.UUID][]string{}
	if len(ids) > 0 {
		ms, err := a.Catalog.MerchantsOf(ctx, a.DB.Bun, partnerID, ids)
		if err != nil {
			return nil, err
		}
		for id, list := range ms {
			for _, m := range list {
				merchants[id] = append(merchants[id], m.Code)
			}
		}
	}
	out := make([]giftView, 0, len(gifts))
	for i := range gifts {
		out = append(out, newGiftView(&gifts[i], merchants[gifts[i].ID]))
	}
	return out, nil
}

func (a *API) listGifts(w http.ResponseWriter, r *http.Request, p *auth.PartnerPrincipal) error {
	all := r.URL.Query().Get("includeRetired")
	if all != "" && all != "true" && all != "false" {
		return apperr.Field(apperr.CodeInvalidField, "includeRetired", "includeRetired must be true or false")
	}
	gifts, err := a.Catalog.Gifts(r.Context(), a.DB.Bun, p.Partner.ID, all == "true")
	if err != nil {
		return err
	}
	items, err := a.giftViews(r.Context(), p.Partner.ID, gifts)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, map[string]any{"items": items})
	return nil
}

func (a *API) getGift(w http.ResponseWriter, r *http.Request, p *auth.PartnerPrincipal) error {
	sku := r.PathValue("sku")
	if err := catalog.ValidateSKU("sku", sku); err != nil {
		return err
	}
	g, err := a.Catalog.GiftBySKU(r.Context(), a.DB.Bun, p.Partner.ID, sku)
	if err != nil {
		return err
	}
	items, err := a.giftViews(r.Context(), p.Partner.ID, []catalog.Gift{*g})
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, items[0])
	return nil
}

// retireGift is DELETE: the gift leaves the catalog, its vouchers stay valid.
func (a *API) retireGift(w *Write) (int, any, error) {
	sku := w.R.PathValue("sku")
	if err := catalog.ValidateSKU("sku", sku); err != nil {
		return 0, nil, err
	}
	if err := a.Catalog.Retire(w.Ctx, w.Tx, w.Partner.Partner.ID, sku); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}

type uploadResponse struct {
	SKU        string              `json:"sku"`
	Received   int                 `json:"received"`
	Inserted   int                 `json:"inserted"`
	Duplicates []catalog.Duplicate `json:"duplicates"`
	Available  int                 `json:"available"`
}

// uploadCodes adds codes to a pool gift: JSON {"codes": [...]} or text/csv
// with one code per line and an optional "code" header line. With
// ?async=true the upload becomes a codes bulk job (202 and its status URL,
// as the portal's upload does) instead of being stored in the request.
func (a *API) uploadCodes(w *Write) (int, any, error) {
	sku := w.R.PathValue("sku")
	if err := catalog.ValidateSKU("sku", sku); err != nil {
		return 0, nil, err
	}
	async := w.R.URL.Query().Get("async")
	if async != "" && async != "true" && async != "false" {
		return 0, nil, apperr.Field(apperr.CodeInvalidField, "async", "async must be true or false")
	}
	var codes []string
	mt, _, _ := mime.ParseMediaType(w.R.Header.Get("Content-Type"))
	if mt == "text/csv" {
		var err error
		if codes, err = parseCodesCSV(w.Body); err != nil {
			return 0, nil, err
		}
	} else {
		var req struct {
			Codes []string `json:"codes"`
		}
		if err := DecodeJSON(w.R, w.Body, &req); err != nil {
			if apperr.Is(err, apperr.CodeUnsupportedMediaType) {
				return 0, nil, apperr.New(apperr.CodeUnsupportedMediaType, "send codes as Content-Type: application/json ({\"codes\": [...]}) or text/csv (one code per line)")
			}
			return 0, nil, err
		}
		codes = req.Codes
	}
	if async == "true" {
		j, err := a.Bulk.EnqueueCodesTx(w.Ctx, w.Tx, w.Partner.Partner.ID, sku, codes)
		if err != nil {
			return 0, nil, err
		}
		return http.StatusAccepted, jobAccepted{JobID: j.ID, Kind: j.Kind, State: j.State, Total: j.Total, StatusURL: "/integrations/jobs/" + j.ID.String()}, nil
	}
	res, err := a.Catalog.UploadCodesTx(w.Ctx, w.Tx, w.Partner.Partner.ID, sku, codes)
	if err != nil {
		return 0, nil, err
	}
	if res.Duplicates == nil {
		res.Duplicates = []catalog.Duplicate{}
	}
	return http.StatusOK, uploadResponse{SKU: sku, Received: res.Received, Inserted: res.Inserted, Duplicates: res.Duplicates, Available: res.Available}, nil
}

// parseCodesCSV reads one code per line (catalog.ParseCodesCSV).
func parseCodesCSV(body []byte) ([]string, error) {
	return catalog.ParseCodesCSV(bytes.NewReader(body))
}

// partnerVoucherView is a voucher as its partner sees it. The code is left
// out: it is the user's bearer value, shown only to them (and looked up by
// merchants who hold it).
type partnerVoucherView struct {
	ID                 uuid.UUID  `json:"id"`
	UserID             uuid.UUID  `json:"userId"`
	GiftID             uuid.UUID  `json:"giftId"`
	Status             string     `json:"status"`
	CostPoints         int64      `json:"costPoints"`
	ClaimedAt          time.Time  `json:"claimedAt"`
	ExpiresAt          *time.Time `json:"expiresAt"`
	RedeemedAt         *time.Time `json:"redeemedAt"`
	RedeemedByMerchant *uuid.UUID `json:"redeemedByMerchantId"`
	ExpiredAt          *time.Time `json:"expiredAt"`
	CancelledAt        *time.Time `json:"cancelledAt"`
	CancelReason       *string    `json:"cancelReason"`
	Refunded           bool       `json:"refunded"`
}

func newPartnerVoucherView(v *voucher.Voucher, now time.Time) partnerVoucherView {
	return partnerVoucherView{
		ID: v.ID, UserID: v.UserID, GiftID: v.GiftID, Status: string(v.EffectiveStatus(now)), CostPoints: v.CostPoints,
		ClaimedAt: v.ClaimedAt, ExpiresAt: v.ExpiresAt, RedeemedAt: v.RedeemedAt, RedeemedByMerchant: v.RedeemedByMerchantID,
		ExpiredAt: v.ExpiredAt, CancelledAt: v.CancelledAt, CancelReason: v.CancelReason, Refunded: v.RefundEntryID != nil,
	}
}

func parseVoucherID(s string) (uuid.UUID, error) {
	id, err := uuid.Parse(s)
	if err != nil || len(s) != 36 {
		return uuid.Nil, apperr.Field(apperr.CodeInvalidField, "id", "id must be a voucher id (a UUID)")
	}
	return id, nil
}

func (a *API) getVoucher(w http.ResponseWriter, r *http.Request, p *auth.PartnerPrincipal) error {
	id, err := parseVoucherID(r.PathValue("id"))
	if err != nil {
		return err
	}
	v, err := a.Vouchers.ByID(r.Context(), a.DB.Bun, p.Partner.ID, id)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, newPartnerVoucherView(v, a.now()))
	return nil
}

type cancelResponse struct {
	partnerVoucherView
	RefundedPoints int64 `json:"refundedPoints"`
	RefundEntryID  int64 `json:"refundEntryId"`
	Balance        int64 `json:"balance"`
}

// cancelVoucher cancels a claimed voucher and refunds its points, once.
// The body is optional: {"reason": "..."}.
func (a *API) cancelVoucher(w *Write) (int, any, error) {
	id, err := parseVoucherID(w.R.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	var req struct {
		Reason *string `json:"reason"`
	}
	if len(bytes.TrimSpace(w.Body)) > 0 {
		if err := DecodeJSON(w.R, w.Body, &req); err != nil {
			return 0, nil, err
		}
	}
	reason := ""
	if req.Reason != nil {
		reason = *req.Reason
	}
	c, err := a.Vouchers.CancelTx(w.Ctx, w.Tx, w.Partner.Partner.ID, id, reason)
	if err != nil {
		return 0, nil, err
	}
	w.UserID = &c.Voucher.UserID
	view := newPartnerVoucherView(c.Voucher, a.now())
	// The stored (replayable) response carries no free text: the reason is
	// on GET /integrations/vouchers/{id}.
	view.CancelReason = nil
	return http.StatusOK, cancelResponse{
		partnerVoucherView: view,
		RefundedPoints:     c.Refund.Points, RefundEntryID: c.Refund.ID, Balance: c.Refund.BalanceAfter,
	}, nil
}
