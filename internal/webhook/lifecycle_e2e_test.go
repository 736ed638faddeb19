package webhook_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/ledger"
)

// TestPointsLifecycleDelivered: the lots job as the app registers it
// (internal/app/jobs.go) records its events through the webhook outbox, so
// a subscribed endpoint receives points.pending at the earn,
// points.activated when the held points become available and
// points.expired when their rest expires, with ids and amounts only.
func TestPointsLifecycleDelivered(t *testing.T) {
	t.Parallel()
	env := apptest.New(t, apptest.Options{Workers: true})
	rcv := newReceiver(t)
	res := env.PartnerJSON("acme", http.MethodPut, "/integrations/webhook-endpoints/"+uuid.NewString(), map[string]any{
		"url": rcv.URL + "/perks", "eventTypes": []string{"points.pending", "points.activated", "points.expired"},
	})
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	res = env.PartnerJSON("acme", http.MethodPut, "/integrations/program", map[string]any{
		"expiryMode": "rolling", "expiryDays": 30, "pendingDays": 7, "negativeBalance": "forbid", "expiryWarningDays": 0,
	})
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	res = env.Partner("acme", http.MethodPut, "/integrations/earning-rules/lifecycle", []byte(`{"name":"Lifecycle","points":40}`))
	require.Less(t, res.StatusCode, 300, "%s", res.Body)
	res = env.PartnerJSON("acme", http.MethodPost, "/integrations/actions", map[string]any{
		"externalUserId": "usr_life", "action": "lifecycle", "reference": "order-life", "createUser": true})
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)

	_, p := rcv.next(t)
	require.Equal(t, "points.pending", p.Type)
	require.Equal(t, float64(40), p.Data["points"])
	require.Equal(t, "order-life", p.Data["reference"])

	// Run the registered lots job now: unique only among unfinished jobs,
	// so River does not fold it into the completed run at start.
	runLots := func() {
		t.Helper()
		opts := &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByState: []rivertype.JobState{
			rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning, rivertype.JobStateScheduled}}}
		require.Eventually(t, func() bool {
			res, err := env.App.Jobs.Insert.Insert(t.Context(), ledger.LotsArgs{}, opts)
			require.NoError(t, err)
			return !res.UniqueSkippedAsDuplicate
		}, 15*time.Second, 20*time.Millisecond)
	}
	env.Clock.Advance(8 * 24 * time.Hour)
	runLots()
	_, p = rcv.next(t)
	require.Equal(t, "points.activated", p.Type)
	require.Equal(t, float64(40), p.Data["points"])
	require.Equal(t, float64(40), p.Data["balance"])

	env.Clock.Advance(31 * 24 * time.Hour)
	runLots()
	_, p = rcv.next(t)
	require.Equal(t, "points.expired", p.Type)
	require.Equal(t, float64(-40), p.Data["points"])
	require.Equal(t, float64(0), p.Data["balance"])
	require.NotContains(t, p.Data, "email")
}
