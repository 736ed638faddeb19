package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"github.com/prometheus/client_golang/prometheus"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/event"
	"github.com/perkshq/perks/internal/user"
	"github.com/perkshq/perks/internal/webhook"
)

// TestOutboxFollowsTheTransaction: an event recorded in a transaction that
// rolls back leaves neither the event, nor a delivery, nor a job; one that
// commits has all three, and the job carries ids only.
func TestOutboxFollowsTheTransaction(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rcv := newReceiver(t)
	ep, _ := b.endpoint(t, rcv.URL)

	sp, err := b.tx.BeginTx(b.ctx, nil) // a savepoint: the caller's transaction
	require.NoError(t, err)
	_, err = b.events.EmitTx(b.ctx, sp, b.partner.ID, event.UserCreated, nil, map[string]any{"n": 1})
	require.NoError(t, err)
	require.Len(t, b.deliveryJobs(t), 1, "the job exists inside the transaction")
	require.NoError(t, sp.Rollback())

	count := func(q string) int {
		var n int
		require.NoError(t, b.tx.NewRaw(q, b.partner.ID).Scan(b.ctx, &n))
		return n
	}
	require.Zero(t, count("SELECT count(*) FROM events WHERE partner_id = ?"))
	require.Zero(t, count("SELECT count(*) FROM webhook_deliveries WHERE partner_id = ?"))
	require.Empty(t, b.deliveryJobs(t))

	ev := b.emit(t, event.UserCreated, map[string]any{"n": 2})
	jobs := b.deliveryJobs(t)
	require.Len(t, jobs, 1)
	require.Equal(t, webhook.DeliverArgs{PartnerID: b.partner.ID, EventID: ev.ID, EndpointID: ep.ID}, jobs[0].Args)
	require.Equal(t, webhook.Queue, jobs[0].Queue)
	require.Equal(t, webhook.MaxAttempts, jobs[0].MaxAttempts)
	d, atts := b.delivery(t, ev, ep)
	require.Equal(t, webhook.StatusPending, d.Status)
	require.Empty(t, atts)
}

// TestOnlySubscribedEnabledEndpointsGetJobs: no job is inserted for an
// endpoint that does not subscribe to the type or is disabled, and several
// subscribers get their deliveries from one insert.
func TestOnlySubscribedEnabledEndpointsGetJobs(t *testing.T) {
	t.Parallel()
	b := setup(t)
	all, _ := b.endpoint(t, "http://127.0.0.1:1/all")
	created, _ := b.endpoint(t, "http://127.0.0.1:1/created", event.UserCreated)
	b.endpoint(t, "http://127.0.0.1:1/anonymised", event.UserAnonymised)
	off, _, err := b.svc.CreateEndpointTx(b.ctx, b.tx, b.partner.ID, webhook.EndpointParams{URL: "http://127.0.0.1:1/off", Enabled: false})
	require.NoError(t, err)

	b.emit(t, event.UserCreated, nil)
	got := map[string]bool{}
	for _, k := range b.deliveryKeys(t) {
		got[k.EndpointID.String()] = true
	}
	require.Equal(t, map[string]bool{all.ID.String(): true, created.ID.String(): true}, got)
	require.NotContains(t, got, off.ID.String())

	// An event nobody subscribes to inserts nothing.
	before := len(b.deliveryKeys(t))
	_, _, _, err = b.svc.PutEndpointTx(b.ctx, b.tx, b.partner.ID, all.ID, webhook.EndpointParams{URL: all.URL, EventTypes: []string{event.UserCreated}, Enabled: true})
	require.NoError(t, err)
	b.emit(t, event.PointsEarned, nil)
	require.Len(t, b.deliveryKeys(t), before)
}

// TestDeliverySignedPerStandardWebhooks: the receiver gets the documented
// payload with webhook-id (the event id), webhook-timestamp and a signature
// that verifies with the Standard Webhooks algorithm.
func TestDeliverySignedPerStandardWebhooks(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rcv := newReceiver(t)
	ep, secret := b.endpoint(t, rcv.URL)
	require.True(t, strings.HasPrefix(secret, "whsec_"))
	key, err := webhook.DecodeSecret(secret)
	require.NoError(t, err)
	require.Len(t, key, 32)

	ev := b.emit(t, "bulk_job.completed", map[string]any{"jobId": "42", "succeeded": 3})
	res := b.work(t, b.deliveryJobs(t)[0].JobRow)
	require.Equal(t, river.EventKindJobCompleted, res.EventKind)

	reqs := rcv.requests()
	require.Len(t, reqs, 1)
	h := reqs[0].Header
	require.Equal(t, ev.ID.String(), h.Get("webhook-id"))
	require.Equal(t, "application/json", h.Get("Content-Type"))
	require.Equal(t, b.clock.Now().Unix(), mustInt(t, h.Get("webhook-timestamp")))
	require.NoError(t, verifyStandard(secret, h, reqs[0].Body, b.clock.Now()))

	var p map[string]any
	require.NoError(t, json.Unmarshal(reqs[0].Body, &p))
	require.Equal(t, ev.ID.String(), p["id"])
	require.Equal(t, "bulk_job.completed", p["type"])
	require.Equal(t, map[string]any{"id": b.partner.ID.String(), "slug": b.partner.Slug}, p["partner"])
	require.Equal(t, map[string]any{"jobId": "42", "succeeded": float64(3)}, p["data"], "unknown types pass their data through")
	require.Equal(t, `{"id":`, string(reqs[0].Body[:6]), "keys in the documented order")

	d, atts := b.delivery(t, ev, ep)
	require.Equal(t, webhook.StatusSucceeded, d.Status)
	require.Len(t, atts, 1)
	require.Equal(t, 200, *atts[0].StatusCode)
	require.Equal(t, `{"ok":true}`, *atts[0].ResponseBody)
}

// TestRetriesWithGrowingDelaysThenSucceeds: a receiver that fails three
// times then answers 200 gets four attempts, each logged, spaced by the
// published schedule (with jitter); River's job follows the same schedule.
func TestRetriesWithGrowingDelaysThenSucceeds(t *testing.T) {
	t.Parallel()
	b := setup(t)
	reg := prometheus.NewRegistry()
	b.svc.Metrics = webhook.NewMetrics(reg)
	rcv := newReceiver(t, 500, 502, 503, 200)
	ep, _ := b.endpoint(t, rcv.URL)
	ev := b.emit(t, event.UserCreated, nil)

	job := b.deliveryJobs(t)[0].JobRow
	var kinds []river.EventKind
	for i := 0; i < 4; i++ {
		if job.ScheduledAt.After(b.clock.Now()) {
			b.clock.Set(job.ScheduledAt) // time passes until the retry is due
		}
		res := b.work(t, job)
		kinds = append(kinds, res.EventKind)
		if i < 3 {
			delay := res.Job.ScheduledAt.Sub(*res.Job.AttemptedAt)
			want := webhook.RetrySchedule[i]
			require.InDelta(t, float64(want), float64(delay), float64(want)*0.2+float64(time.Millisecond),
				"retry %d is scheduled per the published schedule", i+1)
		}
		job = res.Job
	}
	require.Equal(t, []river.EventKind{river.EventKindJobFailed, river.EventKindJobFailed, river.EventKindJobFailed, river.EventKindJobCompleted}, kinds)
	require.Equal(t, rivertype.JobStateCompleted, job.State)

	d, atts := b.delivery(t, ev, ep)
	require.Equal(t, webhook.StatusSucceeded, d.Status)
	require.Equal(t, 4, d.AttemptCount)
	require.Len(t, atts, 4)
	codes := []int{}
	for i, a := range atts {
		require.Equal(t, i+1, a.Attempt)
		codes = append(codes, *a.StatusCode)
	}
	require.Equal(t, []int{500, 502, 503, 200}, codes)
	gap1, gap2, gap3 := atts[1].AttemptedAt.Sub(atts[0].AttemptedAt), atts[2].AttemptedAt.Sub(atts[1].AttemptedAt), atts[3].AttemptedAt.Sub(atts[2].AttemptedAt)
	require.Less(t, gap1, gap2)
	require.Less(t, gap2, gap3)

	ids := map[string]bool{}
	for _, r := range rcv.requests() {
		ids[r.Header.Get("webhook-id")] = true
	}
	require.Equal(t, map[string]bool{ev.ID.String(): true}, ids, "webhook-id is stable across retries")

	// Each recorded attempt is counted for the partner, by outcome.
	families, err := reg.Gather()
	require.NoError(t, err)
	got, timed := map[string]float64{}, uint64(0)
	for _, f := range families {
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			require.Equal(t, b.partner.Slug, labels["partner"])
			switch f.GetName() {
			case "perks_webhook_attempts_total":
				got[labels["outcome"]] = m.GetCounter().GetValue()
			case "perks_webhook_attempt_duration_seconds":
				timed += m.GetHistogram().GetSampleCount()
			}
		}
	}
	require.Equal(t, map[string]float64{webhook.AttemptRetrying: 3, webhook.AttemptDelivered: 1}, got)
	require.Equal(t, uint64(4), timed)
}

// TestReceiverAnswers covers the outcomes that are not a plain retry.
func TestReceiverAnswers(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		status     int
		header     map[string]string
		kind       river.EventKind
		delivery   string
		endpointOn bool
		minNext    time.Duration
	}{
		{name: "410 disables the endpoint", status: http.StatusGone, kind: river.EventKindJobCompleted, delivery: webhook.StatusDisabled},
		{name: "302 is a failure, not followed", status: http.StatusFound, header: map[string]string{"Location": "/elsewhere"}, kind: river.EventKindJobFailed, delivery: webhook.StatusPending, endpointOn: true},
		{name: "301 is a failure too", status: http.StatusMovedPermanently, header: map[string]string{"Location": "/elsewhere"}, kind: river.EventKindJobFailed, delivery: webhook.StatusPending, endpointOn: true},
		{name: "429 with Retry-After seconds", status: http.StatusTooManyRequests, header: map[string]string{"Retry-After": "3600"}, kind: river.EventKindJobFailed, delivery: webhook.StatusPending, endpointOn: true, minNext: time.Hour},
		{name: "503 with Retry-After date", status: http.StatusServiceUnavailable, header: map[string]string{"Retry-After": "@2h"}, kind: river.EventKindJobFailed, delivery: webhook.StatusPending, endpointOn: true, minNext: 2*time.Hour - 2*time.Second},
		{name: "400 is retried", status: http.StatusBadRequest, kind: river.EventKindJobFailed, delivery: webhook.StatusPending, endpointOn: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			rcv := newReceiver(t, c.status)
			for k, v := range c.header {
				if v == "@2h" {
					v = time.Now().Add(2 * time.Hour).UTC().Format(http.TimeFormat)
				}
				rcv.setHeader(k, v)
			}
			ep, _ := b.endpoint(t, rcv.URL)
			ev := b.emit(t, event.UserCreated, nil)
			res := b.work(t, b.deliveryJobs(t)[0].JobRow)
			require.Equal(t, c.kind, res.EventKind)
			require.Len(t, rcv.requests(), 1, "redirects are never followed")

			d, atts := b.delivery(t, ev, ep)
			require.Equal(t, c.delivery, d.Status)
			require.Len(t, atts, 1)
			require.Equal(t, c.status, *atts[0].StatusCode)
			got, err := b.svc.Endpoint(b.ctx, b.tx, b.partner.ID, ep.ID)
			require.NoError(t, err)
			require.Equal(t, c.endpointOn, got.Enabled)
			if !c.endpointOn {
				require.Contains(t, *got.DisabledReason, "410")
			}
			if c.kind == river.EventKindJobFailed {
				require.NotNil(t, d.NextAttemptAt)
				next := d.NextAttemptAt.Sub(*d.LastAttemptAt)
				require.GreaterOrEqual(t, next, max(c.minNext, 4*time.Second))
				require.WithinDuration(t, *d.NextAttemptAt, res.Job.ScheduledAt, time.Millisecond, "River retries when the log says")
			}
		})
	}
}

// TestDisabledEndpointStopsDelivery: after a 410, jobs already queued for
// the endpoint do not send, and new events insert no job for it.
func TestDisabledEndpointStopsDelivery(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rcv := newReceiver(t, http.StatusGone)
	ep, _ := b.endpoint(t, rcv.URL)
	first := b.emit(t, event.UserCreated, nil)
	second := b.emit(t, event.UserCreated, nil)
	jobs := b.deliveryJobs(t)
	require.Len(t, jobs, 2)
	b.work(t, jobs[0].JobRow)
	res := b.work(t, jobs[1].JobRow)
	require.Equal(t, river.EventKindJobCompleted, res.EventKind)
	require.Len(t, rcv.requests(), 1, "the queued delivery was not sent")
	d1, _ := b.delivery(t, first, ep)
	d2, atts := b.delivery(t, second, ep)
	require.Equal(t, webhook.StatusDisabled, d1.Status)
	require.Equal(t, webhook.StatusDisabled, d2.Status)
	require.Empty(t, atts)

	b.emit(t, event.UserCreated, nil)
	require.Len(t, b.deliveryJobs(t), 2, "no job for a disabled endpoint")
}

// TestLastAttemptFailsTheDelivery: when the last allowed attempt fails the
// delivery is marked failed and River discards the job.
func TestLastAttemptFailsTheDelivery(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rcv := newReceiver(t, 500)
	ep, _ := b.endpoint(t, rcv.URL)
	ev := b.emit(t, event.UserCreated, nil)
	job := b.deliveryJobs(t)[0].JobRow
	_, err := b.tx.NewRaw("UPDATE river_job SET attempt = max_attempts - 1 WHERE id = ?", job.ID).Exec(b.ctx)
	require.NoError(t, err)
	job.Attempt = job.MaxAttempts - 1

	res := b.work(t, job)
	require.Equal(t, rivertype.JobStateDiscarded, res.Job.State)
	d, _ := b.delivery(t, ev, ep)
	require.Equal(t, webhook.StatusFailed, d.Status)
	require.NotNil(t, d.CompletedAt)
	require.Nil(t, d.NextAttemptAt)
	require.Equal(t, "receiver answered 500", *d.LastError)
}

// TestLastAttemptThatCannotBeMadeFailsTheDelivery: when the last attempt
// breaks down before reaching the receiver, the delivery does not stay
// pending after River discards the job.
func TestLastAttemptThatCannotBeMadeFailsTheDelivery(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rcv := newReceiver(t)
	ep, _ := b.endpoint(t, rcv.URL)
	ev := b.emit(t, event.UserCreated, nil)
	job := b.deliveryJobs(t)[0].JobRow
	_, err := b.tx.NewRaw("UPDATE river_job SET attempt = max_attempts - 1 WHERE id = ?", job.ID).Exec(b.ctx)
	require.NoError(t, err)
	job.Attempt = job.MaxAttempts - 1
	webhook.SetAfterSend(b.svc, func() error { return errors.New("worker lost its database connection") })

	res := b.work(t, job)
	require.Equal(t, rivertype.JobStateDiscarded, res.Job.State)
	d, atts := b.delivery(t, ev, ep)
	require.Equal(t, webhook.StatusFailed, d.Status)
	require.Empty(t, atts)
	require.NotContains(t, *d.LastError, "database", "internal errors are not shown to the partner")
}

// TestKilledAfterSendingDeliversAgain: a worker that dies after the
// receiver answered but before recording (simulated by cancelling there)
// leaves the job to River's retry, and the receiver sees the same
// webhook-id twice, which it deduplicates on.
func TestKilledAfterSendingDeliversAgain(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rcv := newReceiver(t)
	ep, _ := b.endpoint(t, rcv.URL)
	ev := b.emit(t, event.UserCreated, nil)
	webhook.SetAfterSend(b.svc, func() error { return context.Canceled })

	res := b.work(t, b.deliveryJobs(t)[0].JobRow)
	require.Equal(t, river.EventKindJobFailed, res.EventKind)
	d, atts := b.delivery(t, ev, ep)
	require.Equal(t, webhook.StatusPending, d.Status, "nothing was recorded")
	require.Empty(t, atts)

	webhook.SetAfterSend(b.svc, nil)
	b.clock.Set(res.Job.ScheduledAt)
	res = b.work(t, res.Job)
	require.Equal(t, river.EventKindJobCompleted, res.EventKind)
	reqs := rcv.requests()
	require.Len(t, reqs, 2)
	require.Equal(t, ev.ID.String(), reqs[0].Header.Get("webhook-id"))
	require.Equal(t, reqs[0].Header.Get("webhook-id"), reqs[1].Header.Get("webhook-id"))
	d, atts = b.delivery(t, ev, ep)
	require.Equal(t, webhook.StatusSucceeded, d.Status)
	require.Len(t, atts, 1)
}

// TestRotationSignsWithBothSecrets: during the grace period every delivery
// carries two signatures, one per secret, and each verifies on its own;
// afterwards only the new secret signs.
func TestRotationSignsWithBothSecrets(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rcv := newReceiver(t)
	ep, oldSecret := b.endpoint(t, rcv.URL)
	newSecret, expires, err := b.svc.RotateSecretTx(b.ctx, b.tx, b.partner.ID, ep.ID, time.Hour)
	require.NoError(t, err)
	require.NotEqual(t, oldSecret, newSecret)
	require.Equal(t, b.clock.Now().Add(time.Hour), *expires)

	b.emit(t, event.UserCreated, nil)
	b.work(t, b.deliveryJobs(t)[0].JobRow)
	r := rcv.requests()[0]
	require.Len(t, strings.Fields(r.Header.Get("webhook-signature")), 2)
	require.NoError(t, verifyStandard(oldSecret, r.Header, r.Body, b.clock.Now()))
	require.NoError(t, verifyStandard(newSecret, r.Header, r.Body, b.clock.Now()))

	b.clock.Set(expires.Add(time.Second))
	b.emit(t, event.UserCreated, nil)
	b.work(t, b.deliveryJobs(t)[1].JobRow)
	r = rcv.requests()[1]
	require.Len(t, strings.Fields(r.Header.Get("webhook-signature")), 1)
	require.Error(t, verifyStandard(oldSecret, r.Header, r.Body, b.clock.Now()))
	require.NoError(t, verifyStandard(newSecret, r.Header, r.Body, b.clock.Now()))

	// A zero grace drops the old secret at once (a leaked secret).
	latest, expires, err := b.svc.RotateSecretTx(b.ctx, b.tx, b.partner.ID, ep.ID, 0)
	require.NoError(t, err)
	require.Nil(t, expires)
	b.emit(t, event.UserCreated, nil)
	b.work(t, b.deliveryJobs(t)[2].JobRow)
	r = rcv.requests()[2]
	require.Len(t, strings.Fields(r.Header.Get("webhook-signature")), 1)
	require.NoError(t, verifyStandard(latest, r.Header, r.Body, b.clock.Now()))
}

// TestAnonymisedUsersPayloadsCarryNoPII: payloads are built when sent, so a
// user.created queued before the user was anonymised goes out without
// personal data; the job arguments never held any; and receivers' answers
// that echoed personal data are wiped from the log.
func TestAnonymisedUsersPayloadsCarryNoPII(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rcv := newReceiver(t)
	echo := newEchoReceiver(t)
	b.endpoint(t, rcv.URL, event.UserCreated, event.UserAnonymised)
	echoEP, _ := b.endpoint(t, echo.URL, event.UserUpdated)
	email, name := "ann.secret@example.com", "Ann Secretname"

	res, err := b.users.UpsertTx(b.ctx, b.tx, b.partner.ID, "ext-pii-1", user.Profile{Email: &email, DisplayName: &name})
	require.NoError(t, err)
	_, err = b.users.UpsertTx(b.ctx, b.tx, b.partner.ID, "ext-pii-1", user.Profile{DisplayName: &name})
	require.NoError(t, err)
	// The user.updated delivery goes out now; the receiver echoes it back.
	var updatedJob, createdJob *rivertype.JobRow
	for _, j := range b.deliveryJobs(t) {
		if j.Args.EndpointID == echoEP.ID {
			updatedJob = j.JobRow
		} else {
			createdJob = j.JobRow
		}
	}
	b.work(t, updatedJob)
	var echoed int
	require.NoError(t, b.tx.NewRaw("SELECT count(*) FROM webhook_attempts WHERE partner_id = ? AND response_body LIKE ?", b.partner.ID, "%"+email+"%").Scan(b.ctx, &echoed))
	require.Equal(t, 1, echoed)

	_, err = b.users.AnonymiseTx(b.ctx, b.tx, b.partner.ID, "ext-pii-1")
	require.NoError(t, err)
	require.NoError(t, b.tx.NewRaw("SELECT count(*) FROM webhook_attempts WHERE partner_id = ? AND response_body LIKE ?", b.partner.ID, "%"+email+"%").Scan(b.ctx, &echoed))
	require.Zero(t, echoed, "anonymisation wipes echoed personal data from the log")

	b.work(t, createdJob)
	for _, j := range b.deliveryJobs(t) {
		if j.State == rivertype.JobStateAvailable {
			b.work(t, j.JobRow)
		}
	}
	reqs := rcv.requests()
	require.Len(t, reqs, 2)
	for _, r := range reqs {
		require.NotContains(t, string(r.Body), email)
		require.NotContains(t, string(r.Body), "Secretname")
		require.NotContains(t, string(r.Body), "ext-pii-1")
		var p struct {
			Type string         `json:"type"`
			Data map[string]any `json:"data"`
		}
		require.NoError(t, json.Unmarshal(r.Body, &p))
		require.Equal(t, map[string]any{"userId": res.User.ID.String(), "externalUserId": nil, "anonymised": true}, p.Data, p.Type)
	}

	var args []string
	require.NoError(t, b.tx.NewRaw("SELECT args::text FROM river_job WHERE kind = ?", webhook.DeliverArgs{}.Kind()).Scan(b.ctx, &args))
	for _, a := range args {
		require.NotContains(t, a, email)
		require.NotContains(t, a, "ext-pii-1")
	}
}

// TestUserPayloadWhileNotAnonymised: user events carry the profile as it is
// when sent.
func TestUserPayloadWhileNotAnonymised(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rcv := newReceiver(t)
	b.endpoint(t, rcv.URL)
	email, first := "bo@example.com", "Bo"
	res, err := b.users.UpsertTx(b.ctx, b.tx, b.partner.ID, "ext-bo", user.Profile{Email: &email, FirstName: &first})
	require.NoError(t, err)
	b.work(t, b.deliveryJobs(t)[0].JobRow)
	var p struct {
		Data map[string]any `json:"data"`
	}
	require.NoError(t, json.Unmarshal(rcv.requests()[0].Body, &p))
	require.Equal(t, map[string]any{
		"userId": res.User.ID.String(), "externalUserId": "ext-bo", "anonymised": false,
		"email": email, "displayName": nil, "firstName": first, "lastName": nil, "locale": nil, "countryCode": nil,
	}, p.Data)
}
