package webhook_test

import (
	"net/http"
	"testing"

	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/event"
	"github.com/perkshq/perks/internal/partner"
	"github.com/perkshq/perks/internal/webhook"
)

// TestSuspendedPartnerDeliveriesWait: while a partner is suspended (or its
// onboarding pending), its deliveries are not sent: the job is snoozed
// without using an attempt and the delivery stays pending, with no attempt
// recorded; once the partner is active again the same job delivers.
func TestSuspendedPartnerDeliveriesWait(t *testing.T) {
	t.Parallel()
	for _, status := range []string{partner.StatusSuspended, partner.StatusPending} {
		t.Run(status, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			rcv := newReceiver(t, http.StatusOK)
			ep, _ := b.endpoint(t, rcv.URL)
			ev := b.emit(t, event.UserCreated, nil)
			_, err := b.tx.NewUpdate().Table("partners").Set("status = ?", status).Where("id = ?", b.partner.ID).Exec(b.ctx)
			require.NoError(t, err)

			jobs := b.deliveryJobs(t)
			require.Len(t, jobs, 1)
			res := b.work(t, jobs[0].JobRow)
			require.Equal(t, river.EventKindJobSnoozed, res.EventKind)
			require.Empty(t, rcv.requests(), "nothing is sent for a partner that is not active")
			d, atts := b.delivery(t, ev, ep)
			require.Equal(t, webhook.StatusPending, d.Status)
			require.Empty(t, atts)

			_, err = b.tx.NewUpdate().Table("partners").Set("status = 'active'").Where("id = ?", b.partner.ID).Exec(b.ctx)
			require.NoError(t, err)
			res = b.work(t, b.deliveryJobs(t)[0].JobRow)
			require.Equal(t, river.EventKindJobCompleted, res.EventKind)
			require.Len(t, rcv.requests(), 1)
			d, _ = b.delivery(t, ev, ep)
			require.Equal(t, webhook.StatusSucceeded, d.Status)
		})
	}
}
