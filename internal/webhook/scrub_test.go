package webhook_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/app"
	"github.com/perkshq/perks/internal/dbtest"
	"github.com/perkshq/perks/internal/event"
	"github.com/perkshq/perks/internal/jobs"
	"github.com/perkshq/perks/internal/keyring"
	"github.com/perkshq/perks/internal/partner"
	"github.com/perkshq/perks/internal/user"
	"github.com/perkshq/perks/internal/webhook"
)

// TestAnswerEchoedAfterAnonymisationIsNotLogged reproduces the race of a
// delivery in flight while its user is deleted: the receiver holds the
// request until the user is anonymised (or erased), then echoes the payload,
// which was built before and holds the email. Whatever the order, the
// echoed email never lands in webhook_attempts.
func TestAnswerEchoedAfterAnonymisationIsNotLogged(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		// committed: the deletion commits before the receiver answers;
		// otherwise it is still open while the answer is recorded, and
		// commits once the recording waits for it (or has finished).
		committed bool
		erase     bool
	}{
		{name: "anonymised before the answer", committed: true},
		{name: "anonymisation committing while the answer is recorded"},
		{name: "erased before the answer", committed: true, erase: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := dbtest.NewDB(t)
			keys, err := keyring.New(make([]byte, keyring.KeySize))
			require.NoError(t, err)
			p, err := partner.NewService(keys).Upsert(ctx, db.Bun, partner.CreateParams{Slug: "race", Name: "Race"})
			require.NoError(t, err)
			policy := &webhook.URLPolicy{AllowPrivate: true}
			svc := &webhook.Service{Keys: keys, Policy: policy, Sender: webhook.NewSender(policy), Now: time.Now}
			rec := &event.Recorder{Outbox: svc, Now: time.Now}
			svc.Users = &user.Service{Keys: keys, Events: rec, Now: time.Now, Erase: app.EraseSteps()}
			workers := river.NewWorkers() // registered, not worked: the test calls Deliver itself
			river.AddWorker(workers, &webhook.DeliverWorker{DB: db.Bun, Webhooks: svc})
			clients, err := jobs.New(db, workers, jobs.Options{Log: slog.New(slog.DiscardHandler)})
			require.NoError(t, err)
			svc.Jobs = clients

			arrived, release := make(chan struct{}), make(chan struct{})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				close(arrived)
				<-release
				_, _ = w.Write(body) // a careless receiver echoes the payload
			}))
			t.Cleanup(srv.Close)

			email := "racer." + uuid.NewString()[:8] + "@example.com"
			var args webhook.DeliverArgs
			err = db.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
				ep, _, err := svc.CreateEndpointTx(ctx, tx, p.ID, webhook.EndpointParams{URL: srv.URL, EventTypes: []string{event.UserCreated}, Enabled: true})
				if err != nil {
					return err
				}
				res, err := svc.Users.UpsertTx(ctx, tx, p.ID, "racer", user.Profile{Email: &email})
				if err != nil {
					return err
				}
				var evID uuid.UUID
				if err := tx.NewRaw("SELECT id FROM events WHERE partner_id = ? AND user_id = ? AND type = ?", p.ID, res.User.ID, event.UserCreated).Scan(ctx, &evID); err != nil {
					return err
				}
				args = webhook.DeliverArgs{PartnerID: p.ID, EventID: evID, EndpointID: ep.ID}
				return nil
			})
			require.NoError(t, err)

			done := make(chan error, 1)
			go func() {
				_, err := svc.Deliver(ctx, db.Bun, args, 1, webhook.MaxAttempts)
				done <- err
			}()
			<-arrived

			del, err := db.Bun.BeginTx(ctx, nil)
			require.NoError(t, err)
			defer func() { _ = del.Rollback() }()
			if c.erase {
				u, err := svc.Users.Get(ctx, del, p.ID, "racer")
				require.NoError(t, err)
				require.NoError(t, svc.Users.EraseTx(ctx, del, p.ID, []uuid.UUID{u.ID}))
			} else {
				_, err = svc.Users.AnonymiseTx(ctx, del, p.ID, "racer")
				require.NoError(t, err)
			}
			var deliverErr error
			delivered := false
			if c.committed {
				require.NoError(t, del.Commit())
				close(release)
			} else {
				close(release)
				// Commit once the recording either finished (the bug) or
				// waits for the anonymisation's row lock (the fix).
				require.Eventually(t, func() bool {
					select {
					case deliverErr = <-done:
						delivered = true
						return true
					default:
					}
					var waiting int
					err := db.Bun.NewRaw(`SELECT count(*) FROM pg_stat_activity
						WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(ctx, &waiting)
					return err == nil && waiting > 0
				}, 10*time.Second, 5*time.Millisecond)
				require.NoError(t, del.Commit())
			}
			if !delivered {
				deliverErr = <-done
			}
			if !c.erase {
				// After an erasure the delivery is gone with the user's
				// events, and recording may fail on it: River retries,
				// and the retry finds nothing to send.
				require.NoError(t, deliverErr)
			}

			var echoed, attempts int
			require.NoError(t, db.Bun.NewRaw("SELECT count(*) FROM webhook_attempts WHERE response_body LIKE ?", "%"+email+"%").Scan(ctx, &echoed))
			require.Zero(t, echoed, "the echoed email was logged")
			require.NoError(t, db.Bun.NewRaw("SELECT count(*) FROM webhook_attempts").Scan(ctx, &attempts))
			if !c.erase {
				require.Equal(t, 1, attempts, "the attempt itself is logged")
			}
		})
	}
}
