package bulk_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/bulk"
	"github.com/perkshq/perks/internal/jobs"
)

// TestWorkYieldsAfterItsBudget: an attempt works chunks for AttemptBudget
// only, then snoozes (no attempt used up) with its progress committed; the
// next attempts continue where it stopped until the job completes. The
// worker's clock advances half a budget per reading, so each attempt does
// two chunks.
func TestWorkYieldsAfterItsBudget(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := apptest.New(t)
	provisionMany(t, env, "y", 3)
	const n = 2*bulk.ChunkSize*2 + 100 // three attempts: 2 + 2 + 1 chunks
	items := make([]map[string]any, n)
	for i := range items {
		items[i] = map[string]any{"externalUserId": fmt.Sprintf("y%d", i%3), "action": "purchase", "points": 1}
	}
	body, err := json.Marshal(map[string]any{"items": items})
	require.NoError(t, err)
	res := env.Partner("acme", http.MethodPost, "/integrations/actions/multistore", body)
	require.Equal(t, http.StatusAccepted, res.StatusCode, "%s", res.Body)
	jobID := uuid.MustParse(res.JSON(t)["jobId"].(string))

	clock := apptest.NewClock(time.Now())
	w := &bulk.Worker{DB: env.DB.Bun, Service: env.App.Bulk, Now: func() time.Time {
		now := clock.Now()
		clock.Advance(bulk.AttemptBudget / 2)
		return now
	}}
	job := &river.Job[bulk.WorkArgs]{JobRow: &rivertype.JobRow{Attempt: 1}, Args: bulk.WorkArgs{PartnerID: env.Acme.Partner.ID, JobID: jobID}}
	for _, want := range []int{2 * bulk.ChunkSize, 4 * bulk.ChunkSize} {
		err := w.Work(ctx, job)
		var snooze *river.JobSnoozeError
		require.ErrorAs(t, err, &snooze, "the attempt yields")
		require.Zero(t, snooze.Duration, "available again at once")
		j, err := env.App.Bulk.Get(ctx, env.DB.Bun, env.Acme.Partner.ID, jobID)
		require.NoError(t, err)
		require.Equal(t, want, j.Done, "the progress of the attempt is committed")
		require.Equal(t, bulk.StateRunning, j.State)
	}
	require.NoError(t, w.Work(ctx, job), "the last attempt completes the job")
	j, err := env.App.Bulk.Get(ctx, env.DB.Bun, env.Acme.Partner.ID, jobID)
	require.NoError(t, err)
	require.Equal(t, bulk.StateCompleted, j.State)
	require.Equal(t, n, j.Done)
	require.Equal(t, n, env.Count("ledger_entries", "true"))
}

// TestAttemptsFitTheRescue: River rescues a crashed job only once both
// RescueStuckJobsAfter and the worker's Timeout have passed, then waits for
// NextRetry; these must keep a crashed bulk job's resume under two minutes.
func TestAttemptsFitTheRescue(t *testing.T) {
	t.Parallel()
	w := &bulk.Worker{}
	job := &river.Job[bulk.WorkArgs]{JobRow: &rivertype.JobRow{}}
	require.LessOrEqual(t, w.Timeout(job), jobs.RescueStuckJobsAfter)
	require.Less(t, bulk.AttemptBudget, bulk.AttemptTimeout, "room for the chunk in flight")
	const rescuerInterval, schedulerInterval = 30 * time.Second, 5 * time.Second // River defaults, v0.41 to v0.51
	for attempt := 1; attempt <= (bulk.WorkArgs{}).InsertOpts().MaxAttempts; attempt++ {
		job.Attempt = attempt
		delay := time.Until(w.NextRetry(job))
		require.LessOrEqual(t, delay, bulk.MaxRetryDelay, "attempt %d", attempt)
		require.Less(t, max(jobs.RescueStuckJobsAfter, w.Timeout(job))+rescuerInterval+delay+schedulerInterval, 2*time.Minute, "attempt %d", attempt)
	}
}
