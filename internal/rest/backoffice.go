package rest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/auth"
	"github.com/perkshq/perks/internal/bulk"
	"github.com/perkshq/perks/internal/earning"
	"github.com/perkshq/perks/internal/ranking"
	"github.com/perkshq/perks/internal/user"
)

// Bulk bodies: 10,000 multistore items or 100,000 external ids fit.
const (
	multistoreBodyLimit  = 4 << 20
	multideleteBodyLimit = 16 << 20
)

type multistoreRequest struct {
	Items           []json.RawMessage `json:"items"`
	Action          *string           `json:"action"`
	ExternalUserIDs []json.RawMessage `json:"externalUserIds"`
	Points          json.RawMessage   `json:"points"`
}

type multistoreItem struct {
	ExternalUserID *string         `json:"externalUserId"`
	Action         *string         `json:"action"`
	Reference      *string         `json:"reference"`
	Points         json.RawMessage `json:"points"`
	Amount         json.RawMessage `json:"amount"`
	OccurredAt     json.RawMessage `json:"occurredAt"`
	PendingUntil   json.RawMessage `json:"pendingUntil"`
	Pending        bool            `json:"pending"`
}

type itemResult struct {
	Index     int    `json:"index"`
	Status    string `json:"status"`
	EntryID   *int64 `json:"entryId,omitempty"`
	Duplicate bool   `json:"duplicate,omitempty"`
	// Protected says, for an item that earned, whether a resend of the
	// call can earn it again: false only for an item without a reference
	// in a call without an Idempotency-Key.
	Protected *bool   `json:"protected,omitempty"`
	Balance   *int64  `json:"balance,omitempty"`
	Code      *string `json:"code,omitempty"`
	Field     string  `json:"field,omitempty"`
	// Breakdown is how an item that earned computed its points.
	Breakdown *earning.Breakdown `json:"breakdown,omitempty"`
}

type multistoreResponse struct {
	Total  int `json:"total"`
	OK     int `json:"ok"`
	Failed int `json:"failed"`
	// Unprotected counts the items a resend would earn again, Warning says
	// what to add (both absent when every item is protected).
	Unprotected int          `json:"unprotected,omitempty"`
	Warning     string       `json:"warning,omitempty"`
	Results     []itemResult `json:"results"`
}

// unprotectedWarning tells a partner how to make a whole call safe to resend.
const unprotectedWarning = "items without a reference are not protected against a resend of this call (protected: false): send an Idempotency-Key header, or give each item a reference"

type jobAccepted struct {
	JobID     uuid.UUID `json:"jobId"`
	Kind      string    `json:"kind"`
	State     string    `json:"state"`
	Total     int       `json:"total"`
	StatusURL string    `json:"statusUrl"`
	// Multistore jobs: the items a resend would earn again (see
	// multistoreResponse).
	Unprotected int    `json:"unprotected,omitempty"`
	Warning     string `json:"warning,omitempty"`
}

// decodeItem decodes one multistore item strictly and validates it
// (earning.EarnParams.Validate); a bad item becomes that item's error, not
// the request's.
func decodeItem(raw json.RawMessage, now time.Time) earning.ManyItem {
	var it multistoreItem
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&it); err != nil {
		return earning.ManyItem{Err: jsonError(err)}
	}
	switch {
	case it.ExternalUserID == nil:
		return earning.ManyItem{Err: apperr.Field(apperr.CodeMissingField, "externalUserId", "externalUserId is required")}
	case it.Action == nil:
		return earning.ManyItem{Err: apperr.Field(apperr.CodeMissingField, "action", "action is required")}
	}
	until, err := parseTime("pendingUntil", it.PendingUntil)
	if err != nil {
		return earning.ManyItem{Err: err}
	}
	ep := earning.EarnParams{ExternalUserID: *it.ExternalUserID, Code: *it.Action, Reference: it.Reference,
		PendingUntil: until, Hold: it.Pending}
	if err := decodeAmount(&ep, it.Amount); err != nil {
		return earning.ManyItem{Err: err}
	}
	return newItem(ep, it.Points, it.OccurredAt, now)
}

// newItem completes a multistore item with its points and occurredAt and
// validates it; Err holds the first error.
func newItem(ep earning.EarnParams, points, occurredAt json.RawMessage, now time.Time) earning.ManyItem {
	it := earning.ManyItem{EarnParams: ep}
	if it.Err = decodeEarnNumbers(&it.EarnParams, points, occurredAt); it.Err == nil {
		it.Err = it.Validate(now)
	}
	return it
}

// multistore is seed 001 generosity/multistore: up to 10,000 earns, each
// with its own result, in input order. Large calls (or ?async=true) become
// a job.
func (a *API) multistore(w *Write) (int, any, error) {
	var req multistoreRequest
	if err := DecodeJSON(w.R, w.Body, &req); err != nil {
		return 0, nil, err
	}
	async := w.R.URL.Query().Get("async")
	if async != "" && async != "true" && async != "false" {
		return 0, nil, apperr.Field(apperr.CodeInvalidField, "async", "async must be true or false")
	}
	now := a.now()
	var inputs []earning.ManyItem
	switch {
	case req.Items != nil && (req.Action != nil || req.ExternalUserIDs != nil):
		return 0, nil, apperr.New(apperr.CodeBadRequest, "send either items, or action with externalUserIds, not both")
	case req.Items != nil && len(req.Points) > 0:
		// Ignoring it would change the request silently: each item carries
		// its own points.
		return 0, nil, apperr.Field(apperr.CodeInvalidField, "points", "points applies to action with externalUserIds; with items, give each item its points")
	case req.Items != nil:
		if len(req.Items) > bulk.MaxMultistoreItems {
			return 0, nil, apperr.Field(apperr.CodePayloadTooLarge, "items", "at most %d items per call (got %d)", bulk.MaxMultistoreItems, len(req.Items))
		}
		inputs = make([]earning.ManyItem, len(req.Items))
		for i, raw := range req.Items {
			inputs[i] = decodeItem(raw, now)
		}
	case req.Action != nil && req.ExternalUserIDs != nil:
		if len(req.ExternalUserIDs) > bulk.MaxMultistoreItems {
			return 0, nil, apperr.Field(apperr.CodePayloadTooLarge, "externalUserIds", "at most %d users per call (got %d)", bulk.MaxMultistoreItems, len(req.ExternalUserIDs))
		}
		inputs = make([]earning.ManyItem, len(req.ExternalUserIDs))
		for i, raw := range req.ExternalUserIDs {
			var ext string
			if err := json.Unmarshal(raw, &ext); err != nil {
				inputs[i] = earning.ManyItem{Err: apperr.Field(apperr.CodeInvalidField, "externalUserId", "externalUserIds must hold strings")}
				continue
			}
			inputs[i] = newItem(earning.EarnParams{ExternalUserID: ext, Code: *req.Action}, req.Points, nil, now)
		}
	default:
		return 0, nil, apperr.Field(apperr.CodeMissingField, "items", "send items, or action with externalUserIds")
	}
	if len(inputs) == 0 {
		return 0, nil, apperr.Field(apperr.CodeInvalidField, "items", "send at least one item")
	}

	if async == "true" || len(inputs) > bulk.SyncThreshold {
		j, err := a.Bulk.EnqueueMultistoreTx(w.Ctx, w.Tx, w.Partner.Partner.ID, inputs)
		if err != nil {
			return 0, nil, err
		}
		acc := jobAccepted{JobID: j.ID, Kind: j.Kind, State: j.State, Total: j.Total, StatusURL: "/integrations/jobs/" + j.ID.String()}
		if w.R.Header.Get(HeaderIdempotencyKey) == "" {
			for _, in := range inputs {
				if in.Err == nil && in.Reference == nil {
					acc.Unprotected++
				}
			}
			if acc.Unprotected > 0 {
				acc.Warning = unprotectedWarning
			}
		}
		return http.StatusAccepted, acc, nil
	}
	results, err := a.Bulk.MultistoreTx(w.Ctx, w.Tx, w.Partner.Partner, inputs)
	if err != nil {
		return 0, nil, err
	}
	out := multistoreResponse{Total: len(results), Results: make([]itemResult, len(results))}
	keyed := w.R.Header.Get(HeaderIdempotencyKey) != ""
	for i, r := range results {
		// The call's Idempotency-Key protects every item; without one only
		// an item's reference does.
		protected := keyed || inputs[i].Reference != nil
		ir := itemResult{Index: i, Status: "ok", EntryID: r.EntryID, Duplicate: r.Duplicate, Protected: &protected, Balance: r.Balance, Breakdown: r.Breakdown}
		if r.Err != nil {
			code := string(r.Err.Code)
			ir = itemResult{Index: i, Status: "error", Code: &code, Field: r.Err.Field}
			out.Failed++
		} else {
			out.OK++
			if !protected {
				out.Unprotected++
			}
		}
		out.Results[i] = ir
	}
	if out.Unprotected > 0 {
		out.Warning = unprotectedWarning
	}
	return http.StatusOK, out, nil
}

type multideleteRequest struct {
	ExternalUserIDs []string `json:"externalUserIds"`
	Mode            *string  `json:"mode"`
}

// multidelete is seed 001 user/multidelete: always a job.
func (a *API) multidelete(w *Write) (int, any, error) {
	var req multideleteRequest
	if err := DecodeJSON(w.R, w.Body, &req); err != nil {
		return 0, nil, err
	}
	if len(req.ExternalUserIDs) == 0 {
		return 0, nil, apperr.Field(apperr.CodeMissingField, "externalUserIds", "send at least one external user id")
	}
	if len(req.ExternalUserIDs) > bulk.MaxMultideleteUsers {
		return 0, nil, apperr.Field(apperr.CodePayloadTooLarge, "externalUserIds", "at most %d users per call (got %d)", bulk.MaxMultideleteUsers, len(req.ExternalUserIDs))
	}
	mode := bulk.ModeAnonymise
	if req.Mode != nil {
		mode = *req.Mode
	}
	if mode != bulk.ModeAnonymise && mode != bulk.ModeErase {
		return 0, nil, apperr.Field(apperr.CodeInvalidField, "mode", "mode must be anonymise or erase")
	}
	for i, ext := range req.ExternalUserIDs {
		if err := user.ValidateExternalID(fmt.Sprintf("externalUserIds[%d]", i), ext); err != nil {
			return 0, nil, err
		}
	}
	j, err := a.Bulk.EnqueueMultideleteTx(w.Ctx, w.Tx, w.Partner.Partner.ID, req.ExternalUserIDs, mode)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusAccepted, jobAccepted{JobID: j.ID, Kind: j.Kind, State: j.State, Total: j.Total, StatusURL: "/integrations/jobs/" + j.ID.String()}, nil
}

type jobView struct {
	ID         uuid.UUID    `json:"id"`
	Kind       string       `json:"kind"`
	State      string       `json:"state"`
	Total      int          `json:"total"`
	Done       int          `json:"done"`
	Failed     int          `json:"failed"`
	CreatedAt  time.Time    `json:"createdAt"`
	StartedAt  *time.Time   `json:"startedAt"`
	FinishedAt *time.Time   `json:"finishedAt"`
	Results    []itemResult `json:"results"`
	NextAfter  *int         `json:"nextAfter"`
}

// getJob reports a job's progress and a page of per-item results
// (?only=errors for failures only; ?after=<index>&limit=).
func (a *API) getJob(w http.ResponseWriter, r *http.Request, p *auth.PartnerPrincipal) error {
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		return apperr.New(apperr.CodeNotFound, "job not found")
	}
	q := r.URL.Query()
	after, limit := -1, 100
	if v := q.Get("after"); v != "" {
		// Item positions are an integer column.
		if after, err = strconv.Atoi(v); err != nil || after < -1 || after > math.MaxInt32 {
			return apperr.Field(apperr.CodeInvalidField, "after", "after must be an item index from -1 to %d", math.MaxInt32)
		}
	}
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > 1000 {
			return apperr.Field(apperr.CodeInvalidField, "limit", "limit must be between 1 and 1000")
		}
	}
	only := q.Get("only")
	if only != "" && only != "errors" {
		return apperr.Field(apperr.CodeInvalidField, "only", "only must be errors")
	}
	j, err := a.Bulk.Get(r.Context(), a.DB.Bun, p.Partner.ID, id)
	if err != nil {
		return err
	}
	var items []bulk.Item
	if only == "errors" {
		items, err = a.Bulk.Errors(r.Context(), a.DB.Bun, p.Partner.ID, id, after, limit+1)
	} else {
		items, err = a.Bulk.Results(r.Context(), a.DB.Bun, p.Partner.ID, id, after, limit+1)
	}
	if err != nil {
		return err
	}
	v := jobView{ID: j.ID, Kind: j.Kind, State: j.State, Total: j.Total, Done: j.Done, Failed: j.Failed,
		CreatedAt: j.CreatedAt, StartedAt: j.StartedAt, FinishedAt: j.FinishedAt, Results: []itemResult{}}
	if len(items) > limit {
		items = items[:limit]
		next := items[limit-1].Position
		v.NextAfter = &next
	}
	for _, it := range items {
		status := it.Status
		if status == "" {
			status = "error"
		}
		v.Results = append(v.Results, itemResult{Index: it.Position, Status: status, EntryID: it.EntryID, Code: it.ErrorCode})
	}
	WriteJSON(w, http.StatusOK, v)
	return nil
}

type listedUser struct {
	userView
	pointsView
}

// listUsers is seed 001 user/infos: keyset pages by user id, filtered by
// updatedSince, country and hasBalance.
func (a *API) listUsers(w http.ResponseWriter, r *http.Request, p *auth.PartnerPrincipal) error {
	q := r.URL.Query()
	f := user.ListFilter{Limit: 100}
	var err error
	if v := q.Get("limit"); v != "" {
		if f.Limit, err = strconv.Atoi(v); err != nil || f.Limit < 1 || f.Limit > 1000 {
			return apperr.Field(apperr.CodeInvalidField, "limit", "limit must be between 1 and 1000")
		}
	}
	if v := q.Get("cursor"); v != "" {
		b, err := base64.RawURLEncoding.DecodeString(v)
		id, perr := uuid.FromBytes(b)
		if err != nil || perr != nil {
			return apperr.Field(apperr.CodeInvalidField, "cursor", "cursor is not a cursor of this list")
		}
		f.After = &id
	}
	if v := q.Get("updatedSince"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return apperr.Field(apperr.CodeInvalidField, "updatedSince", "updatedSince must be an RFC 3339 timestamp")
		}
		f.UpdatedSince = &t
	}
	if v := q.Get("country"); v != "" {
		n, err := user.Normalize(user.Profile{CountryCode: &v})
		if err != nil {
			return apperr.Field(apperr.CodeInvalidField, "country", "country must be an ISO 3166-1 alpha-2 code")
		}
		f.Country = *n.CountryCode
	}
	if v := q.Get("hasBalance"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return apperr.Field(apperr.CodeInvalidField, "hasBalance", "hasBalance must be true or false")
		}
		f.HasBalance = &b
	}
	rows, err := a.Users.List(r.Context(), a.readDB().Bun, p.Partner.ID, f)
	if err != nil {
		return err
	}
	out := struct {
		Items      []listedUser `json:"items"`
		NextCursor *string      `json:"nextCursor"`
	}{Items: make([]listedUser, 0, len(rows))}
	ids := make([]uuid.UUID, len(rows))
	for i := range rows {
		ids[i] = rows[i].ID
	}
	// One more query for the page's lifecycle (pending, expiring), not one
	// per user.
	sums, err := a.Ledger.SummariesOf(r.Context(), a.readDB().Bun, p.Partner.ID, ids)
	if err != nil {
		return err
	}
	for i := range rows {
		out.Items = append(out.Items, listedUser{userView: newUserView(&rows[i].User), pointsView: newPointsView(sums[rows[i].ID])})
	}
	if len(rows) == f.Limit {
		c := base64.RawURLEncoding.EncodeToString(rows[len(rows)-1].ID[:])
		out.NextCursor = &c
	}
	WriteJSON(w, http.StatusOK, out)
	return nil
}

type rankView struct {
	UserID      uuid.UUID `json:"userId"`
	DisplayName *string   `json:"displayName"`
	Rank        int64     `json:"rank"`
	Points      int64     `json:"lifetimePoints"`
}

// userRanking is seed 001 user/ranking: the user's rank and the n users
// above and below (display names only).
func (a *API) userRanking(w http.ResponseWriter, r *http.Request, p *auth.PartnerPrincipal) error {
	ext := r.PathValue("externalUserId")
	if err := user.ValidateExternalID("externalUserId", ext); err != nil {
		return err
	}
	n := 5
	if v := r.URL.Query().Get("n"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			return apperr.Field(apperr.CodeInvalidField, "n", "n must be a whole number")
		}
	}
	// The user and the names of their neighbours in one statement, on the
	// database the leaderboard reads. A standby may not have a new user
	// yet: USER_NOT_FOUND there is checked on the primary.
	userID, around, err := a.Ranking.AroundHash(r.Context(), a.readDB().Bun, p.Partner.ID, a.Users.ExternalIDHash(p.Partner.ID, ext), n)
	if apperr.CodeOf(err) == apperr.CodeUserNotFound && a.ReadDB != nil {
		var u *user.User
		if u, err = a.Users.Get(r.Context(), a.DB.Bun, p.Partner.ID, ext); err == nil {
			userID = u.ID
			around, err = a.Ranking.Around(r.Context(), a.readDB().Bun, p.Partner.ID, u.ID, n)
		}
	}
	if err != nil {
		return err
	}
	view := func(es []ranking.Entry) []rankView {
		out := make([]rankView, 0, len(es))
		for _, e := range es {
			out = append(out, rankView{UserID: e.UserID, DisplayName: e.DisplayName, Rank: e.Rank, Points: e.Score})
		}
		return out
	}
	resp := map[string]any{"userId": userID, "rank": nil, "lifetimePoints": nil, "above": view(around.Above), "below": view(around.Below), "refreshedAt": around.RefreshedAt}
	if around.Me != nil {
		resp["rank"], resp["lifetimePoints"] = around.Me.Rank, around.Me.Score
	}
	WriteJSON(w, http.StatusOK, resp)
	return nil
}
