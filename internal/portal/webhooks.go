package portal

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/account"
	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/event"
	"github.com/perkshq/perks/internal/webhook"
)

// The Webhooks page: the partner's endpoints (create with event
// subscriptions, edit, enable/disable, rotate the signing secret, shown
// once, delete), the delivery log with filters and pages, and replays of
// one event or of a time window. Every action calls the webhook.Service
// method of the matching REST route (/integrations/webhook-endpoints...,
// /integrations/webhook-deliveries, /integrations/events/{id}/replay,
// /integrations/events/replay) and is audited in its transaction. Changes
// need the `credentials` permission (developers, owners); every role may
// look.

func init() { addPages("webhooks", "webhook-edit") }

func (p *Portal) registerWebhooks(h func(string, http.HandlerFunc)) {
	h("GET "+Path+"/webhooks", p.authed(account.PermView, p.webhooks))
	h("POST "+Path+"/webhooks", p.authed(account.PermCredentials, p.createEndpoint))
	h("GET "+Path+"/webhooks/{id}", p.authed(account.PermView, p.endpointPage))
	h("POST "+Path+"/webhooks/{id}", p.authed(account.PermCredentials, p.saveEndpoint))
	h("POST "+Path+"/webhooks/{id}/enable", p.authed(account.PermCredentials, p.enableEndpoint(true)))
	h("POST "+Path+"/webhooks/{id}/disable", p.authed(account.PermCredentials, p.enableEndpoint(false)))
	h("POST "+Path+"/webhooks/{id}/rotate", p.authed(account.PermCredentials, p.rotateEndpoint))
	h("POST "+Path+"/webhooks/{id}/delete", p.authed(account.PermCredentials, p.deleteEndpoint))
	h("POST "+Path+"/webhooks/events/{id}/replay", p.authed(account.PermCredentials, p.replayEvent))
	h("POST "+Path+"/webhooks/replay", p.authed(account.PermCredentials, p.replayWindow))
}

// deliveryFilterForm is the delivery log's filter form as typed.
type deliveryFilterForm struct {
	Status, Endpoint, EventType, From, To, Cursor string
}

type webhooksData struct {
	Endpoints  []webhook.Endpoint
	Types      []string
	Statuses   []string
	Deliveries []webhook.Delivery
	Filter     deliveryFilterForm
	// NextQuery is the query string of the next page ("" on the last).
	NextQuery string
	// Secret is shown once, after creating an endpoint or rotating.
	Secret   string
	SecretOf uuid.UUID
	// Form refills the create form after a refusal.
	Form endpointForm
	// ReplayJob is the id of a window replay just scheduled.
	ReplayJob int64
}

type endpointForm struct {
	URL, Description string
	EventTypes       []string
}

// eventTypeChoice is one checkbox of the subscriptions.
type eventTypeChoice struct {
	Type    string
	Checked bool
}

func eventTypeChoices(all, checked []string) []eventTypeChoice {
	out := make([]eventTypeChoice, len(all))
	for i, t := range all {
		out[i] = eventTypeChoice{Type: t, Checked: slices.Contains(checked, t)}
	}
	return out
}

// timeLayout is how the filter and replay forms take times (the
// datetime-local input's value), read as UTC.
const timeLayout = "2006-01-02T15:04"

// parseFormTime reads a datetime-local value (UTC) or an RFC 3339 time.
func parseFormTime(field, v string) (time.Time, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{timeLayout, time.RFC3339Nano, "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, apperr.Field(apperr.CodeInvalidField, field, "%s must be a date and time such as 2026-11-25T09:30 (UTC)", field)
}

// filterOf reads the delivery log's filters from the query.
func filterOf(q url.Values) (deliveryFilterForm, webhook.DeliveryFilter, error) {
	form := deliveryFilterForm{Status: q.Get("status"), Endpoint: q.Get("endpoint"), EventType: q.Get("eventType"),
		From: q.Get("from"), To: q.Get("to"), Cursor: q.Get("cursor")}
	f := webhook.DeliveryFilter{Status: form.Status, EventType: form.EventType, Cursor: form.Cursor, Limit: 25}
	if form.Endpoint != "" {
		id, err := uuid.Parse(form.Endpoint)
		if err != nil {
			return form, f, apperr.Field(apperr.CodeInvalidField, "endpoint", "endpoint must be one of the listed endpoints")
		}
		f.EndpointID = &id
	}
	var err error
	if f.From, err = parseFormTime("from", form.From); err != nil {
		return form, f, err
	}
	if f.To, err = parseFormTime("to", form.To); err != nil {
		return form, f, err
	}
	return form, f, nil
}

func (p *Portal) webhooks(w http.ResponseWriter, r *http.Request) {
	p.webhooksPage(w, r, http.StatusOK, "", "", webhooksData{})
}

// webhooksPage renders the page; d carries what a POST wants shown (the
// secret, a refused form, a replay job).
func (p *Portal) webhooksPage(w http.ResponseWriter, r *http.Request, status int, notice, errMsg string, d webhooksData) {
	me := current(r)
	eps, err := p.Webhooks.Endpoints(r.Context(), p.DB, me.Partner.ID)
	if err != nil {
		p.fail(w, r, err, 0, "")
		return
	}
	d.Endpoints, d.Types, d.Statuses = eps, event.Types, webhook.Statuses
	form, f, err := filterOf(r.URL.Query())
	d.Filter = form
	if err == nil {
		var next string
		d.Deliveries, next, err = p.Webhooks.Deliveries(r.Context(), p.DB, me.Partner.ID, f)
		if next != "" {
			q := url.Values{}
			for k, v := range map[string]string{"status": form.Status, "endpoint": form.Endpoint, "eventType": form.EventType, "from": form.From, "to": form.To} {
				if v != "" {
					q.Set(k, v)
				}
			}
			q.Set("cursor", next)
			d.NextQuery = q.Encode()
		}
	}
	if err != nil {
		e := apperr.As(err)
		if e == nil {
			p.fail(w, r, err, 0, "")
			return
		}
		// A bad filter: the page with the message, and no log.
		status, errMsg = http.StatusBadRequest, "Delivery log filter: "+e.Message+"."
	}
	p.render(w, r, status, "webhooks", &view{Title: "Webhooks", Nav: "webhooks", Notice: notice, Error: errMsg, Data: d})
}

// endpointParams reads the create and edit forms.
func endpointParams(r *http.Request, enabled bool) (webhook.EndpointParams, endpointForm) {
	_ = r.ParseForm()
	form := endpointForm{URL: strings.TrimSpace(r.PostFormValue("url")), Description: r.PostFormValue("description"), EventTypes: r.PostForm["eventTypes"]}
	return webhook.EndpointParams{URL: form.URL, Description: form.Description, EventTypes: form.EventTypes, Enabled: enabled}, form
}

func endpointState(e *webhook.Endpoint) map[string]any {
	return map[string]any{"id": e.ID, "url": e.URL, "description": e.Description, "eventTypes": e.EventTypes, "enabled": e.Enabled}
}

// refused shows an apperr's message on the page (4xx), or fails.
func (p *Portal) webhookRefused(w http.ResponseWriter, r *http.Request, err error, d webhooksData) {
	if e := apperr.As(err); e != nil && e.Code != apperr.CodeInternal {
		p.webhooksPage(w, r, apperr.Lookup(e.Code).Status, "", e.Message+".", d)
		return
	}
	p.fail(w, r, err, 0, "")
}

// createEndpoint creates an endpoint and shows its signing secret once, as
// POST /integrations/webhook-endpoints.
func (p *Portal) createEndpoint(w http.ResponseWriter, r *http.Request) {
	me := current(r)
	params, form := endpointParams(r, true)
	var ep *webhook.Endpoint
	var secret string
	err := p.DB.RunInTx(r.Context(), nil, func(ctx context.Context, tx bun.Tx) error {
		var err error
		if ep, secret, err = p.Webhooks.CreateEndpointTx(ctx, tx, me.Partner.ID, params); err != nil {
			return err
		}
		return p.record(ctx, tx, me, "webhook_endpoint.create", "webhook endpoint "+ep.ID.String(), nil, endpointState(ep))
	})
	if err != nil {
		p.webhookRefused(w, r, err, webhooksData{Form: form})
		return
	}
	p.webhooksPage(w, r, http.StatusCreated, "Endpoint created. Copy its signing secret now: it is never shown again.", "",
		webhooksData{Secret: secret, SecretOf: ep.ID})
}

type endpointEditData struct {
	Endpoint *webhook.Endpoint
	Types    []string
	Form     endpointForm
}

func (p *Portal) endpointPage(w http.ResponseWriter, r *http.Request) {
	p.showEndpoint(w, r, http.StatusOK, "", nil)
}

func (p *Portal) showEndpoint(w http.ResponseWriter, r *http.Request, status int, errMsg string, form *endpointForm) {
	id, err := parseID(r)
	if err != nil {
		p.fail(w, r, err, 0, "")
		return
	}
	ep, err := p.Webhooks.Endpoint(r.Context(), p.DB, current(r).Partner.ID, id)
	if err != nil {
		p.fail(w, r, err, 0, "")
		return
	}
	d := endpointEditData{Endpoint: ep, Types: event.Types, Form: endpointForm{URL: ep.URL, Description: ep.Description, EventTypes: ep.EventTypes}}
	if form != nil {
		d.Form = *form
	}
	p.render(w, r, status, "webhook-edit", &view{Title: "Webhook endpoint", Nav: "webhooks", Error: errMsg, Data: d})
}

// saveEndpoint replaces an endpoint's URL, description and subscriptions,
// keeping its on/off state, as PUT /integrations/webhook-endpoints/{id}.
func (p *Portal) saveEndpoint(w http.ResponseWriter, r *http.Request) {
	me := current(r)
	id, err := parseID(r)
	if err != nil {
		p.fail(w, r, err, 0, "")
		return
	}
	params, form := endpointParams(r, false)
	err = p.DB.RunInTx(r.Context(), nil, func(ctx context.Context, tx bun.Tx) error {
		old, err := p.Webhooks.Endpoint(ctx, tx, me.Partner.ID, id)
		if err != nil {
			return err
		}
		params.Enabled = old.Enabled
		before := endpointState(old)
		ep, _, _, err := p.Webhooks.PutEndpointTx(ctx, tx, me.Partner.ID, id, params)
		if err != nil {
			return err
		}
		return p.record(ctx, tx, me, "webhook_endpoint.update", "webhook endpoint "+id.String(), before, endpointState(ep))
	})
	if err != nil {
		if e := apperr.As(err); e != nil && e.Code != apperr.CodeInternal && e.Code != apperr.CodeNotFound {
			p.showEndpoint(w, r, apperr.Lookup(e.Code).Status, e.Message+".", &form)
			return
		}
		p.fail(w, r, err, 0, "")
		return
	}
	p.webhooksPage(w, r, http.StatusOK, "Endpoint saved.", "", webhooksData{})
}

func (p *Portal) enableEndpoint(enabled bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		me := current(r)
		id, err := parseID(r)
		if err == nil {
			err = p.DB.RunInTx(r.Context(), nil, func(ctx context.Context, tx bun.Tx) error {
				old, err := p.Webhooks.Endpoint(ctx, tx, me.Partner.ID, id)
				if err != nil {
					return err
				}
				before := endpointState(old)
				ep, err := p.Webhooks.SetEndpointEnabledTx(ctx, tx, me.Partner.ID, id, enabled)
				if err != nil {
					return err
				}
				action := "webhook_endpoint.disable"
				if enabled {
					action = "webhook_endpoint.enable"
				}
				return p.record(ctx, tx, me, action, "webhook endpoint "+id.String(), before, endpointState(ep))
			})
		}
		if err != nil {
			p.webhookRefused(w, r, err, webhooksData{})
			return
		}
		p.webhooksPage(w, r, http.StatusOK, "Saved.", "", webhooksData{})
	}
}

// rotateEndpoint issues a new signing secret, shown once; the old one keeps
// signing next to it for webhook.DefaultGracePeriod, as POST
// /integrations/webhook-endpoints/{id}/rotate-secret without a body.
func (p *Portal) rotateEndpoint(w http.ResponseWriter, r *http.Request) {
	me := current(r)
	id, err := parseID(r)
	var secret string
	var until *time.Time
	if err == nil {
		err = p.DB.RunInTx(r.Context(), nil, func(ctx context.Context, tx bun.Tx) error {
			var err error
			if secret, until, err = p.Webhooks.RotateSecretTx(ctx, tx, me.Partner.ID, id, webhook.DefaultGracePeriod); err != nil {
				return err
			}
			return p.record(ctx, tx, me, "webhook_endpoint.rotate_secret", "webhook endpoint "+id.String(), nil, map[string]any{"previousSecretExpiresAt": until})
		})
	}
	if err != nil {
		p.webhookRefused(w, r, err, webhooksData{})
		return
	}
	notice := "New signing secret issued. Copy it now: it is never shown again."
	if until != nil {
		notice += " The previous secret keeps signing, next to it, until " + until.UTC().Format("2006-01-02 15:04 UTC") + "."
	}
	p.webhooksPage(w, r, http.StatusOK, notice, "", webhooksData{Secret: secret, SecretOf: id})
}

func (p *Portal) deleteEndpoint(w http.ResponseWriter, r *http.Request) {
	me := current(r)
	id, err := parseID(r)
	if err == nil {
		err = p.DB.RunInTx(r.Context(), nil, func(ctx context.Context, tx bun.Tx) error {
			old, err := p.Webhooks.Endpoint(ctx, tx, me.Partner.ID, id)
			if err != nil {
				return err
			}
			if err := p.Webhooks.DeleteEndpoint(ctx, tx, me.Partner.ID, id); err != nil {
				return err
			}
			return p.record(ctx, tx, me, "webhook_endpoint.delete", "webhook endpoint "+id.String(), endpointState(old), nil)
		})
	}
	if err != nil {
		p.webhookRefused(w, r, err, webhooksData{})
		return
	}
	p.webhooksPage(w, r, http.StatusOK, "Endpoint deleted.", "", webhooksData{})
}

// replayEvent re-sends one event to the endpoint of the delivery it was
// picked from (or every subscribed enabled endpoint when none is given),
// as POST /integrations/events/{id}/replay.
func (p *Portal) replayEvent(w http.ResponseWriter, r *http.Request) {
	me := current(r)
	id, err := parseID(r)
	var endpointID *uuid.UUID
	if v := r.PostFormValue("endpoint"); err == nil && v != "" {
		e, perr := uuid.Parse(v)
		if perr != nil {
			err = apperr.Field(apperr.CodeInvalidField, "endpoint", "endpoint must be one of the listed endpoints")
		}
		endpointID = &e
	}
	var n int
	if err == nil {
		err = p.DB.RunInTx(r.Context(), nil, func(ctx context.Context, tx bun.Tx) error {
			rows, err := p.Webhooks.ReplayEventTx(ctx, tx, me.Partner.ID, id, endpointID)
			if err != nil {
				return err
			}
			n = len(rows)
			return p.record(ctx, tx, me, "webhook_event.replay", "event "+id.String(), nil, map[string]any{"endpointId": endpointID, "deliveries": n})
		})
	}
	if err != nil {
		p.webhookRefused(w, r, err, webhooksData{})
		return
	}
	p.webhooksPage(w, r, http.StatusAccepted, "Event queued again for "+strconv.Itoa(n)+" endpoint(s); its new delivery appears in the log.", "", webhooksData{})
}

// replayWindow schedules the job that re-sends a time window's events, as
// POST /integrations/events/replay.
func (p *Portal) replayWindow(w http.ResponseWriter, r *http.Request) {
	me := current(r)
	f := webhook.ReplayFilter{Status: r.PostFormValue("status"), EventType: r.PostFormValue("eventType")}
	var err error
	if f.From, err = parseFormTime("from", r.PostFormValue("from")); err == nil {
		f.To, err = parseFormTime("to", r.PostFormValue("to"))
	}
	if v := r.PostFormValue("endpoint"); err == nil && v != "" {
		id, perr := uuid.Parse(v)
		if perr != nil {
			err = apperr.Field(apperr.CodeInvalidField, "endpoint", "endpoint must be one of the listed endpoints")
		}
		f.EndpointID = &id
	}
	if err == nil && f.EventType != "" && !slices.Contains(event.Types, f.EventType) {
		err = apperr.Field(apperr.CodeInvalidField, "eventType", "unknown event type")
	}
	var job int64
	if err == nil {
		err = p.DB.RunInTx(r.Context(), nil, func(ctx context.Context, tx bun.Tx) error {
			var err error
			if job, err = p.Webhooks.ScheduleReplayTx(ctx, tx, me.Partner.ID, f); err != nil {
				return err
			}
			return p.record(ctx, tx, me, "webhook_event.replay_window", "replay job "+strconv.FormatInt(job, 10), nil, f)
		})
	}
	if err != nil {
		p.webhookRefused(w, r, err, webhooksData{})
		return
	}
	p.webhooksPage(w, r, http.StatusAccepted, "Replay of the window scheduled (job "+strconv.FormatInt(job, 10)+"); the new deliveries appear in the log as it runs.", "",
		webhooksData{ReplayJob: job})
}
