package rest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/perkshq/perks/internal/adjustment"
	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/auth"
	"github.com/perkshq/perks/internal/earning"
	"github.com/perkshq/perks/internal/ledger"
	"github.com/perkshq/perks/internal/user"
)

var integerRE = regexp.MustCompile(`^-?[0-9]{1,19}$`)

// parseInt reads a JSON number that must be a whole number; strings,
// fractions and exponents are refused with the field named.
func parseInt(field string, raw json.RawMessage) (int64, error) {
	s := string(bytes.TrimSpace(raw))
	if !integerRE.MatchString(s) {
		return 0, apperr.Field(apperr.CodeInvalidField, field, "%s must be a whole number, not %s", field, truncate(s, 32))
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, apperr.Field(apperr.CodePointsOutOfRange, field, "%s is out of range", field)
	}
	return n, nil
}

func parseTime(field string, raw json.RawMessage) (*time.Time, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, apperr.Field(apperr.CodeInvalidField, field, "%s must be an RFC 3339 timestamp string", field)
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return nil, apperr.Field(apperr.CodeInvalidField, field, "%s must be an RFC 3339 timestamp such as 2026-11-21T10:00:00Z", field)
	}
	return &t, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

type earnRequest struct {
	ExternalUserID *string         `json:"externalUserId"`
	Action         *string         `json:"action"`
	Reference      *string         `json:"reference"`
	Points         json.RawMessage `json:"points"`
	Amount         json.RawMessage `json:"amount"`
	OccurredAt     json.RawMessage `json:"occurredAt"`
	Metadata       json.RawMessage `json:"metadata"`
	CreateUser     bool            `json:"createUser"`
	PendingUntil   json.RawMessage `json:"pendingUntil"`
	Pending        bool            `json:"pending"`
}

type earnResponse struct {
	EntryID    int64     `json:"entryId"`
	UserID     uuid.UUID `json:"userId"`
	Action     string    `json:"action"`
	Points     int64     `json:"points"`
	Balance    int64     `json:"balance"`
	Reference  *string   `json:"reference"`
	OccurredAt time.Time `json:"occurredAt"`
	// Pending: the points are not spendable yet (not in balance), until
	// PendingUntil, or, when Held, until the partner confirms the earn.
	Pending      bool       `json:"pending"`
	PendingUntil *time.Time `json:"pendingUntil,omitempty"`
	Held         bool       `json:"held,omitempty"`
	// Breakdown is how the points were computed (earning.Breakdown).
	Breakdown json.RawMessage `json:"breakdown"`
}

// dryRunResponse is what an earn would do: no entry id, nothing stored.
type dryRunResponse struct {
	DryRun     bool            `json:"dryRun"`
	UserID     uuid.UUID       `json:"userId"`
	Action     string          `json:"action"`
	Points     int64           `json:"points"`
	Balance    int64           `json:"balance"`
	Reference  *string         `json:"reference"`
	OccurredAt time.Time       `json:"occurredAt"`
	Pending    bool            `json:"pending"`
	Breakdown  json.RawMessage `json:"breakdown"`
}

// earnRoute serves POST /integrations/actions: the earn, or with
// ?dryRun=true its dry run. A dry run is not a write: it bypasses the
// idempotency layer (nothing is stored, not even the response, and no key
// or reference is claimed) and authenticates like a read.
func (a *API) earnRoute() http.Handler {
	write := a.PartnerWrite(a.earn)
	dry := a.Partner(a.dryRunEarn)
	bad := a.Partner(func(http.ResponseWriter, *http.Request, *auth.PartnerPrincipal) error {
		return apperr.Field(apperr.CodeInvalidField, "dryRun", "dryRun must be true or false")
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		switch v, set := q["dryRun"]; {
		case !set || (len(v) == 1 && v[0] == "false"):
			write.ServeHTTP(w, r)
		case len(v) == 1 && v[0] == "true":
			dry.ServeHTTP(w, r)
		default:
			bad.ServeHTTP(w, r)
		}
	})
}

// decodeEarn reads and validates an earn's body (both the earn and its
// dry run).
func (a *API) decodeEarn(r *http.Request, body []byte) (earning.EarnParams, error) {
	var req earnRequest
	if err := DecodeJSON(r, body, &req); err != nil {
		return earning.EarnParams{}, err
	}
	if req.ExternalUserID == nil {
		return earning.EarnParams{}, apperr.Field(apperr.CodeMissingField, "externalUserId", "externalUserId is required")
	}
	if req.Action == nil || *req.Action == "" {
		return earning.EarnParams{}, apperr.Field(apperr.CodeMissingField, "action", "action is required")
	}
	ep := earning.EarnParams{ExternalUserID: *req.ExternalUserID, Code: *req.Action, CreateUser: req.CreateUser}
	if req.Reference != nil {
		// This route forgives spaces around a reference; multistore items
		// do not.
		trimmed := strings.TrimSpace(*req.Reference)
		ep.Reference = &trimmed
	}
	if err := decodeEarnNumbers(&ep, req.Points, req.OccurredAt); err != nil {
		return earning.EarnParams{}, err
	}
	if err := decodeAmount(&ep, req.Amount); err != nil {
		return earning.EarnParams{}, err
	}
	if len(req.Metadata) > 0 && string(req.Metadata) != "null" {
		ep.Metadata = req.Metadata
	}
	var err error
	if ep.PendingUntil, err = parseTime("pendingUntil", req.PendingUntil); err != nil {
		return earning.EarnParams{}, err
	}
	ep.Hold = req.Pending
	if err := ep.Validate(a.now()); err != nil {
		return earning.EarnParams{}, err
	}
	return ep, nil
}

// decodeAmount reads an earn's amount, a JSON whole number of minor units.
func decodeAmount(ep *earning.EarnParams, amount json.RawMessage) error {
	if len(amount) == 0 || string(amount) == "null" {
		return nil
	}
	s := string(bytes.TrimSpace(amount))
	n, err := strconv.ParseInt(s, 10, 64)
	if !integerRE.MatchString(s) || err != nil {
		return apperr.Field(apperr.CodeInvalidField, "amount", "amount must be a whole number of minor units (cents), not %s", truncate(s, 32))
	}
	ep.Amount = &n
	return nil
}

// dryRunEarn answers what the earn would award, with its breakdown, and
// changes nothing (earning.Service.DryRun).
func (a *API) dryRunEarn(w http.ResponseWriter, r *http.Request, p *auth.PartnerPrincipal) error {
	ep, err := a.decodeEarn(r, Body(r.Context()))
	if err != nil {
		return err
	}
	e, err := a.Earning.DryRun(r.Context(), a.DB.Bun, p.Partner, ep)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, dryRunResponse{
		DryRun: true, UserID: e.UserID, Action: ep.Code, Points: e.Points, Balance: e.BalanceAfter,
		Reference: e.Reference, OccurredAt: e.OccurredAt, Pending: e.Kind == ledger.KindPending, Breakdown: e.Breakdown,
	})
	return nil
}

// earn is seed 001's buffer/store: award an action's points to a user,
// exactly once per Idempotency-Key and per reference. The rules are
// earning's (EarnParams.Validate, EarnTx); this decodes the body and claims
// the reference.
func (a *API) earn(w *Write) (int, any, error) {
	// Claimed only once valid, and before the earn, so that a retry whose
	// earn fails (its own daily cap) gets the first answer.
	ep, err := a.decodeEarn(w.R, w.Body)
	if err != nil {
		return 0, nil, err
	}
	if ep.Reference != nil {
		w.Claim("reference:" + *ep.Reference)
	}
	e, err := a.Earning.EarnTx(w.Ctx, w.Tx, w.Partner.Partner, ep)
	if err != nil {
		return 0, nil, err
	}
	w.UserID = &e.UserID
	return http.StatusCreated, earnResponse{
		EntryID: e.ID, UserID: e.UserID, Action: ep.Code, Points: e.Points, Balance: e.BalanceAfter,
		Reference: e.Reference, OccurredAt: e.OccurredAt, Breakdown: e.Breakdown,
		Pending: e.Kind == ledger.KindPending, PendingUntil: e.PendingUntil, Held: e.Kind == ledger.KindPending && e.PendingUntil == nil,
	}, nil
}

// decodeEarnNumbers reads an earn's points (a JSON whole number) and
// occurredAt (an RFC 3339 string) into ep; their rules are Validate's.
func decodeEarnNumbers(ep *earning.EarnParams, points, occurredAt json.RawMessage) error {
	if len(points) > 0 && string(points) != "null" {
		n, err := parseInt("points", points)
		if err != nil {
			return err
		}
		ep.Points = &n
	}
	t, err := parseTime("occurredAt", occurredAt)
	if err != nil {
		return err
	}
	if t != nil {
		ep.OccurredAt = *t
	}
	return nil
}

type adjustRequest struct {
	Points json.RawMessage `json:"points"`
	Reason *string         `json:"reason"`
}

type adjustResponse struct {
	EntryID int64     `json:"entryId"`
	UserID  uuid.UUID `json:"userId"`
	Points  int64     `json:"points"`
	Balance int64     `json:"balance"`
	Reason  string    `json:"reason"`
}

// adjust is a support correction, positive or negative, never below zero:
// adjustment.Service's rule, shared with the portal's Users page.
func (a *API) adjust(w *Write) (int, any, error) {
	ext := w.R.PathValue("externalUserId")
	if err := user.ValidateExternalID("externalUserId", ext); err != nil {
		return 0, nil, err
	}
	var req adjustRequest
	if err := DecodeJSON(w.R, w.Body, &req); err != nil {
		return 0, nil, err
	}
	if len(req.Points) == 0 || string(req.Points) == "null" {
		return 0, nil, apperr.Field(apperr.CodeMissingField, "points", "points is required (signed whole number)")
	}
	points, err := parseInt("points", req.Points)
	if err != nil {
		return 0, nil, err
	}
	p := adjustment.Params{ExternalUserID: ext, Points: points}
	if req.Reason != nil {
		p.Reason = *req.Reason
	}
	res, err := (&adjustment.Service{Users: a.Users, Ledger: a.Ledger}).ApplyTx(w.Ctx, w.Tx, w.Partner.Partner.ID, p)
	if err != nil {
		return 0, nil, err
	}
	w.UserID = &res.UserID
	e := res.Entry
	return http.StatusCreated, adjustResponse{EntryID: e.ID, UserID: res.UserID, Points: e.Points, Balance: e.BalanceAfter, Reason: e.Reason}, nil
}
