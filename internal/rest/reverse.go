package rest

import (
	"encoding/json"
	"net/http"

	"github.com/google/uuid"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/earning"
)

type reverseRequest struct {
	Points json.RawMessage `json:"points"`
	Reason *string         `json:"reason"`
}

type reverseResponse struct {
	// EntryID is the reverse entry; null when nothing could be taken
	// (negativeBalance forbid and a balance of 0).
	EntryID         *int64    `json:"entryId"`
	UserID          uuid.UUID `json:"userId"`
	Reference       string    `json:"reference"`
	EarnEntryID     int64     `json:"earnEntryId"`
	RequestedPoints int64     `json:"requestedPoints"`
	ReversedPoints  int64     `json:"reversedPoints"`
	ShortfallPoints int64     `json:"shortfallPoints"`
	Pending         bool      `json:"pending"`
	Balance         int64     `json:"balance"`
	PendingPoints   int64     `json:"pendingPoints"`
	RemainingPoints int64     `json:"remainingPoints"`
}

// reverse takes back points of an earn (a refund of its order), by the
// earn's reference: POST /integrations/actions/{reference}/reverse. The
// rules are earning.ReverseTx's and ledger.ReverseTx's; this decodes.
// 201 when an entry was written, 200 when nothing could be taken. The
// answer (stored for replays) carries ids and amounts, not the reason.
func (a *API) reverse(w *Write) (int, any, error) {
	var req reverseRequest
	if err := DecodeJSON(w.R, w.Body, &req); err != nil {
		return 0, nil, err
	}
	rp := earning.ReverseParams{Reference: w.R.PathValue("reference")}
	if len(req.Points) > 0 && string(req.Points) != "null" {
		n, err := parseInt("points", req.Points)
		if err != nil {
			return 0, nil, err
		}
		rp.Points = &n
	}
	if req.Reason == nil {
		return 0, nil, apperr.Field(apperr.CodeMissingField, "reason", "reason is required")
	}
	rp.Reason = *req.Reason
	out, err := a.Earning.ReverseTx(w.Ctx, w.Tx, w.Partner.Partner, rp)
	if err != nil {
		return 0, nil, err
	}
	w.UserID = &out.UserID
	res := reverseResponse{
		UserID: out.UserID, Reference: out.Reference, EarnEntryID: out.EarnEntryID,
		RequestedPoints: out.Requested, ReversedPoints: out.Reversed, ShortfallPoints: out.Shortfall, Pending: out.Pending,
		Balance: out.Balance, PendingPoints: out.PendingPoints, RemainingPoints: out.Remaining,
	}
	if out.Entry == nil {
		return http.StatusOK, res, nil
	}
	res.EntryID = &out.Entry.ID
	return http.StatusCreated, res, nil
}
