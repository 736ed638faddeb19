package rest

import (
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/perkshq/perks/internal/ledger"
)

// holdResponse answers a confirm or cancel of a pending earn.
type holdResponse struct {
	Reference string `json:"reference"`
	// Status is confirmed or cancelled.
	Status string `json:"status"`
	// Already: the earn was confirmed (cancelled) before; nothing changed
	// and EntryID is the earlier activate (cancel) entry.
	Already bool `json:"already"`
	// EntryID is the activate or cancel entry, EarnEntryID the earn's.
	EntryID       int64     `json:"entryId"`
	EarnEntryID   int64     `json:"earnEntryId"`
	UserID        uuid.UUID `json:"userId"`
	Points        int64     `json:"points"`
	Balance       int64     `json:"balance"`
	PendingPoints int64     `json:"pendingPoints"`
	// ExpiresAt is the lot's expiry after a confirm (absent: never).
	ExpiresAt *time.Time `json:"expiresAt,omitempty"`
}

type cancelRequest struct {
	Reason *string `json:"reason"`
}

// confirmEarn makes a pending earn's points available now, by the earn's
// reference (earning.ConfirmTx). The body is {}.
func (a *API) confirmEarn(w *Write) (int, any, error) {
	if err := DecodeJSON(w.R, w.Body, &struct{}{}); err != nil {
		return 0, nil, err
	}
	ref := w.R.PathValue("reference")
	h, err := a.Earning.ConfirmTx(w.Ctx, w.Tx, w.Partner.Partner, ref)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, newHoldResponse(w, ref, "confirmed", h), nil
}

// cancelEarn removes a pending earn, by its reference (earning.CancelTx).
// The body is {} or {"reason": "..."}.
func (a *API) cancelEarn(w *Write) (int, any, error) {
	var req cancelRequest
	if err := DecodeJSON(w.R, w.Body, &req); err != nil {
		return 0, nil, err
	}
	reason := ""
	if req.Reason != nil {
		reason = *req.Reason
	}
	ref := w.R.PathValue("reference")
	h, err := a.Earning.CancelTx(w.Ctx, w.Tx, w.Partner.Partner, ref, reason)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, newHoldResponse(w, ref, "cancelled", h), nil
}

func newHoldResponse(w *Write, ref, status string, h *ledger.HoldResult) holdResponse {
	w.UserID = &h.Earn.UserID
	out := holdResponse{
		Reference: ref, Status: status, Already: h.Already, EntryID: h.Entry.ID, EarnEntryID: h.Earn.ID,
		UserID: h.Earn.UserID, Points: h.Lot.Points, Balance: h.Balance, PendingPoints: h.PendingPoints,
	}
	if status == "confirmed" {
		out.ExpiresAt = h.Lot.ExpiresAt
	}
	return out
}
