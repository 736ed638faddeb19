package rest

import (
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/auth"
	"github.com/perkshq/perks/internal/webhook"
)

// registerWebhooks mounts the webhook routes. Every write goes through
// PartnerWrite (one transaction, Idempotency-Key replay), PUT of an
// endpoint included: its caller-chosen id makes a freshly signed retry safe
// by itself, but a client resending the same signed bytes needs the stored
// answer (docs/auth.md, "Replays"). Creating an endpoint (POST, or a PUT of
// a new id) and rotating its secret answer with a signing secret once: the
// stored answer leaves the secret out (no secret at rest in
// idempotency_keys) and says so in secretNote, so a retry gets the same
// endpoint, never a second one nor a second rotation, and never the secret
// again.
func (a *API) registerWebhooks(rt *Router) {
	rt.Handle(http.MethodGet, "/integrations/webhook-endpoints", a.Partner(a.listEndpoints))
	rt.Handle(http.MethodPost, "/integrations/webhook-endpoints", a.PartnerWrite(a.createEndpoint))
	rt.Handle(http.MethodGet, "/integrations/webhook-endpoints/{id}", a.Partner(a.getEndpoint))
	rt.Handle(http.MethodPut, "/integrations/webhook-endpoints/{id}", a.PartnerWrite(a.putEndpoint))
	rt.Handle(http.MethodDelete, "/integrations/webhook-endpoints/{id}", a.PartnerWrite(a.deleteEndpoint))
	rt.Handle(http.MethodPost, "/integrations/webhook-endpoints/{id}/rotate-secret", a.PartnerWrite(a.rotateSecret))
	rt.Handle(http.MethodGet, "/integrations/webhook-deliveries", a.Partner(a.listDeliveries))
	rt.Handle(http.MethodGet, "/integrations/webhook-deliveries/{id}", a.Partner(a.getDelivery))
	rt.Handle(http.MethodPost, "/integrations/events/{id}/replay", a.PartnerWrite(a.replayEvent))
	rt.Handle(http.MethodPost, "/integrations/events/replay", a.PartnerWrite(a.replayWindow))
}

type endpointRequest struct {
	URL         *string  `json:"url"`
	Description *string  `json:"description"`
	EventTypes  []string `json:"eventTypes"`
	Enabled     *bool    `json:"enabled"`
}

func (r *endpointRequest) params() (webhook.EndpointParams, error) {
	if r.URL == nil {
		return webhook.EndpointParams{}, apperr.Field(apperr.CodeMissingField, "url", "url is required")
	}
	p := webhook.EndpointParams{URL: *r.URL, EventTypes: r.EventTypes, Enabled: true}
	if r.Description != nil {
		p.Description = *r.Description
	}
	if r.Enabled != nil {
		p.Enabled = *r.Enabled
	}
	return p, nil
}

// endpointView never carries a secret; Secret is set only in the answer
// that creates the endpoint or rotates its secret.
type endpointView struct {
	ID                      uuid.UUID  `json:"id"`
	URL                     string     `json:"url"`
	Description             string     `json:"description"`
	EventTypes              []string   `json:"eventTypes"`
	Enabled                 bool       `json:"enabled"`
	DisabledReason          *string    `json:"disabledReason"`
	PreviousSecretExpiresAt *time.Time `json:"previousSecretExpiresAt"`
	CreatedAt               time.Time  `json:"createdAt"`
	UpdatedAt               time.Time  `json:"updatedAt"`
	Secret                  string     `json:"secret,omitempty"`
	// SecretNote replaces the secret in a replayed answer.
	SecretNote string `json:"secretNote,omitempty"`
}

// secretShownOnce is the note of a replayed answer that showed a secret.
const secretShownOnce = "the secret was shown once, in the answer to the original request, and is not stored with it; if it was lost, rotate it with POST /integrations/webhook-endpoints/{id}/rotate-secret"

func newEndpointView(e *webhook.Endpoint, secret string) endpointView {
	types := e.EventTypes
	if types == nil {
		types = []string{}
	}
	return endpointView{
		ID: e.ID, URL: e.URL, Description: e.Description, EventTypes: types, Enabled: e.Enabled,
		DisabledReason: e.DisabledReason, PreviousSecretExpiresAt: e.PreviousSecretExpiresAt,
		CreatedAt: e.CreatedAt, UpdatedAt: e.UpdatedAt, Secret: secret,
	}
}

func pathUUID(r *http.Request, name string) (uuid.UUID, error) {
	id, err := uuid.Parse(r.PathValue(name))
	if err != nil {
		return uuid.Nil, apperr.Field(apperr.CodeInvalidField, name, "%s must be a UUID", name)
	}
	return id, nil
}

func queryUUID(r *http.Request, name string) (*uuid.UUID, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return nil, nil
	}
	id, err := uuid.Parse(v)
	if err != nil {
		return nil, apperr.Field(apperr.CodeInvalidField, name, "%s must be a UUID", name)
	}
	return &id, nil
}

func (a *API) listEndpoints(w http.ResponseWriter, r *http.Request, p *auth.PartnerPrincipal) error {
	eps, err := a.Webhooks.Endpoints(r.Context(), a.DB.Bun, p.Partner.ID)
	if err != nil {
		return err
	}
	out := make([]endpointView, len(eps))
	for i := range eps {
		out[i] = newEndpointView(&eps[i], "")
	}
	// items is the envelope of every list (docs/api.md#lists); data is the
	// same array under its old name, kept for existing clients.
	WriteJSON(w, http.StatusOK, map[string]any{"items": out, "data": out})
	return nil
}

// createEndpoint creates an endpoint with a server-chosen id. The answer is
// the only place its secret is ever shown; a retry with the same
// Idempotency-Key gets the same endpoint without it (secretNote).
func (a *API) createEndpoint(w *Write) (int, any, error) {
	var req endpointRequest
	if err := DecodeJSON(w.R, w.Body, &req); err != nil {
		return 0, nil, err
	}
	params, err := req.params()
	if err != nil {
		return 0, nil, err
	}
	ep, secret, err := a.Webhooks.CreateEndpointTx(w.Ctx, w.Tx, w.Partner.Partner.ID, params)
	if err != nil {
		return 0, nil, err
	}
	stored := newEndpointView(ep, "")
	stored.SecretNote = secretShownOnce
	w.StoreInstead(stored)
	return http.StatusCreated, newEndpointView(ep, secret), nil
}

// putEndpoint creates the endpoint under the caller's id (201, with the
// secret; the stored answer has secretNote instead) or replaces its
// settings (200).
func (a *API) putEndpoint(w *Write) (int, any, error) {
	id, err := pathUUID(w.R, "id")
	if err != nil {
		return 0, nil, err
	}
	var req endpointRequest
	if err := DecodeJSON(w.R, w.Body, &req); err != nil {
		return 0, nil, err
	}
	params, err := req.params()
	if err != nil {
		return 0, nil, err
	}
	ep, secret, created, err := a.Webhooks.PutEndpointTx(w.Ctx, w.Tx, w.Partner.Partner.ID, id, params)
	if err != nil {
		return 0, nil, err
	}
	if !created {
		return http.StatusOK, newEndpointView(ep, ""), nil
	}
	stored := newEndpointView(ep, "")
	stored.SecretNote = secretShownOnce
	w.StoreInstead(stored)
	return http.StatusCreated, newEndpointView(ep, secret), nil
}

func (a *API) getEndpoint(w http.ResponseWriter, r *http.Request, p *auth.PartnerPrincipal) error {
	id, err := pathUUID(r, "id")
	if err != nil {
		return err
	}
	ep, err := a.Webhooks.Endpoint(r.Context(), a.DB.Bun, p.Partner.ID, id)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, newEndpointView(ep, ""))
	return nil
}

func (a *API) deleteEndpoint(w *Write) (int, any, error) {
	id, err := pathUUID(w.R, "id")
	if err != nil {
		return 0, nil, err
	}
	if err := a.Webhooks.DeleteEndpoint(w.Ctx, w.Tx, w.Partner.Partner.ID, id); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}

type rotateRequest struct {
	GracePeriodSeconds *int64 `json:"gracePeriodSeconds"`
}

type rotateResponse struct {
	Secret                  string     `json:"secret,omitempty"`
	PreviousSecretExpiresAt *time.Time `json:"previousSecretExpiresAt"`
	// SecretNote replaces the secret in a replayed answer.
	SecretNote string `json:"secretNote,omitempty"`
}

// rotateSecret issues a new secret (shown once); the old one keeps signing,
// next to it, for gracePeriodSeconds (default one day, 0 drops it now). A
// retry with the same Idempotency-Key does not rotate again: it gets the
// answer without the secret (secretNote).
func (a *API) rotateSecret(w *Write) (int, any, error) {
	id, err := pathUUID(w.R, "id")
	if err != nil {
		return 0, nil, err
	}
	var req rotateRequest
	if len(w.Body) > 0 {
		if err := DecodeJSON(w.R, w.Body, &req); err != nil {
			return 0, nil, err
		}
	}
	grace := webhook.DefaultGracePeriod
	if req.GracePeriodSeconds != nil {
		if *req.GracePeriodSeconds < 0 || *req.GracePeriodSeconds > int64(webhook.MaxGracePeriod/time.Second) {
			return 0, nil, apperr.Field(apperr.CodeInvalidField, "gracePeriodSeconds", "gracePeriodSeconds must be between 0 and %d", int64(webhook.MaxGracePeriod/time.Second))
		}
		grace = time.Duration(*req.GracePeriodSeconds) * time.Second
	}
	var res rotateResponse
	res.Secret, res.PreviousSecretExpiresAt, err = a.Webhooks.RotateSecretTx(w.Ctx, w.Tx, w.Partner.Partner.ID, id, grace)
	if err != nil {
		return 0, nil, err
	}
	w.StoreInstead(rotateResponse{PreviousSecretExpiresAt: res.PreviousSecretExpiresAt, SecretNote: secretShownOnce})
	return http.StatusOK, res, nil
}

type deliveryView struct {
	ID             uuid.UUID  `json:"id"`
	EventID        uuid.UUID  `json:"eventId"`
	EventType      string     `json:"eventType"`
	EndpointID     uuid.UUID  `json:"endpointId"`
	Status         string     `json:"status"`
	AttemptCount   int        `json:"attemptCount"`
	LastAttemptAt  *time.Time `json:"lastAttemptAt"`
	LastStatusCode *int       `json:"lastStatusCode"`
	LastError      *string    `json:"lastError"`
	NextAttemptAt  *time.Time `json:"nextAttemptAt"`
	CreatedAt      time.Time  `json:"createdAt"`
	UpdatedAt      time.Time  `json:"updatedAt"`
	CompletedAt    *time.Time `json:"completedAt"`
}

func newDeliveryView(d *webhook.Delivery) deliveryView {
	return deliveryView{
		ID: d.ID, EventID: d.EventID, EventType: d.EventType, EndpointID: d.EndpointID, Status: d.Status,
		AttemptCount: d.AttemptCount, LastAttemptAt: d.LastAttemptAt, LastStatusCode: d.LastStatusCode,
		LastError: d.LastError, NextAttemptAt: d.NextAttemptAt, CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt,
		CompletedAt: d.CompletedAt,
	}
}

type attemptView struct {
	Attempt      int       `json:"attempt"`
	AttemptedAt  time.Time `json:"attemptedAt"`
	StatusCode   *int      `json:"statusCode"`
	LatencyMS    int       `json:"latencyMs"`
	ResponseBody *string   `json:"responseBody"`
	Error        *string   `json:"error"`
}

// listDeliveries is the delivery log, newest event first, filtered by
// eventId, endpointId, status, eventType and creation time (from, to),
// paginated with limit and cursor.
func (a *API) listDeliveries(w http.ResponseWriter, r *http.Request, p *auth.PartnerPrincipal) error {
	q := r.URL.Query()
	var f webhook.DeliveryFilter
	var err error
	if f.EventID, err = queryUUID(r, "eventId"); err != nil {
		return err
	}
	if f.EndpointID, err = queryUUID(r, "endpointId"); err != nil {
		return err
	}
	f.Status, f.Cursor, f.EventType = q.Get("status"), q.Get("cursor"), q.Get("eventType")
	for name, dst := range map[string]*time.Time{"from": &f.From, "to": &f.To} {
		if v := q.Get(name); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return apperr.Field(apperr.CodeInvalidField, name, "%s must be an RFC 3339 time such as 2026-01-05T00:00:00Z", name)
			}
			*dst = t
		}
	}
	if v := q.Get("limit"); v != "" {
		if f.Limit, err = strconv.Atoi(v); err != nil || f.Limit <= 0 {
			return apperr.Field(apperr.CodeInvalidField, "limit", "limit must be between 1 and %d", webhook.MaxPageSize)
		}
	}
	ds, next, err := a.Webhooks.Deliveries(r.Context(), a.DB.Bun, p.Partner.ID, f)
	if err != nil {
		return err
	}
	out := make([]deliveryView, len(ds))
	for i := range ds {
		out[i] = newDeliveryView(&ds[i])
	}
	var nextCursor *string
	if next != "" {
		nextCursor = &next
	}
	// items, as every list; data is the deprecated old name.
	WriteJSON(w, http.StatusOK, map[string]any{"items": out, "data": out, "nextCursor": nextCursor})
	return nil
}

func (a *API) getDelivery(w http.ResponseWriter, r *http.Request, p *auth.PartnerPrincipal) error {
	id, err := pathUUID(r, "id")
	if err != nil {
		return err
	}
	d, atts, err := a.Webhooks.Delivery(r.Context(), a.DB.Bun, p.Partner.ID, id)
	if err != nil {
		return err
	}
	views := make([]attemptView, len(atts))
	for i, at := range atts {
		views[i] = attemptView{
			Attempt: at.Attempt, AttemptedAt: at.AttemptedAt, StatusCode: at.StatusCode, LatencyMS: at.LatencyMS,
			ResponseBody: at.ResponseBody, Error: at.Error,
		}
	}
	WriteJSON(w, http.StatusOK, struct {
		deliveryView
		Attempts []attemptView `json:"attempts"`
	}{newDeliveryView(d), views})
	return nil
}

type replayEventRequest struct {
	EndpointID *string `json:"endpointId"`
}

type replayedView struct {
	EndpointID uuid.UUID `json:"endpointId"`
	Generation int       `json:"generation"`
}

// replayEvent re-sends one event, to endpointId or to every enabled
// endpoint subscribed to its type. The body may be empty.
func (a *API) replayEvent(w *Write) (int, any, error) {
	id, err := pathUUID(w.R, "id")
	if err != nil {
		return 0, nil, err
	}
	var req replayEventRequest
	if len(w.Body) > 0 {
		if err := DecodeJSON(w.R, w.Body, &req); err != nil {
			return 0, nil, err
		}
	}
	var endpointID *uuid.UUID
	if req.EndpointID != nil {
		v, err := uuid.Parse(*req.EndpointID)
		if err != nil {
			return 0, nil, apperr.Field(apperr.CodeInvalidField, "endpointId", "endpointId must be a UUID")
		}
		endpointID = &v
	}
	rows, err := a.Webhooks.ReplayEventTx(w.Ctx, w.Tx, w.Partner.Partner.ID, id, endpointID)
	if err != nil {
		return 0, nil, err
	}
	out := make([]replayedView, len(rows))
	for i, row := range rows {
		out[i] = replayedView{EndpointID: row.EndpointID, Generation: row.Generation}
	}
	return http.StatusAccepted, map[string]any{"eventId": id, "deliveries": out}, nil
}

type replayWindowRequest struct {
	From       *string `json:"from"`
	To         *string `json:"to"`
	Status     *string `json:"status"`
	EndpointID *string `json:"endpointId"`
	EventType  *string `json:"eventType"`
}

// replayWindow schedules a River job that re-sends a time window's events
// (e.g. everything that failed yesterday) and answers with its id. With an
// Idempotency-Key, a retry gets the same job id instead of a second replay.
func (a *API) replayWindow(w *Write) (int, any, error) {
	var req replayWindowRequest
	if err := DecodeJSON(w.R, w.Body, &req); err != nil {
		return 0, nil, err
	}
	var f webhook.ReplayFilter
	parseTime := func(field string, v *string) (time.Time, error) {
		if v == nil {
			return time.Time{}, apperr.Field(apperr.CodeMissingField, field, "%s is required (RFC 3339)", field)
		}
		t, err := time.Parse(time.RFC3339Nano, *v)
		if err != nil {
			return time.Time{}, apperr.Field(apperr.CodeInvalidField, field, "%s must be an RFC 3339 time such as 2026-01-05T00:00:00Z", field)
		}
		return t.UTC(), nil
	}
	var err error
	if f.From, err = parseTime("from", req.From); err != nil {
		return 0, nil, err
	}
	if f.To, err = parseTime("to", req.To); err != nil {
		return 0, nil, err
	}
	if req.Status != nil {
		f.Status = *req.Status
	}
	if req.EventType != nil {
		f.EventType = *req.EventType
	}
	if req.EndpointID != nil {
		v, err := uuid.Parse(*req.EndpointID)
		if err != nil {
			return 0, nil, apperr.Field(apperr.CodeInvalidField, "endpointId", "endpointId must be a UUID")
		}
		f.EndpointID = &v
	}
	jobID, err := a.Webhooks.ScheduleReplayTx(w.Ctx, w.Tx, w.Partner.Partner.ID, f)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusAccepted, map[string]any{"jobId": jobID, "status": "queued"}, nil
}
