package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/bulk"
)

// TestJobsWatchAndList: `perks jobs watch` follows a multidelete of 2,400
// users (three chunks of 1,000, bulk.ChunkSize) from pending to completed,
// one progress line per change, and exits 0; --json streams one object per
// change; `jobs list` shows the job in a table and in JSON. The wait between two polls is the
// runner's hook, which processes one chunk: no wall-clock sleep.
func TestJobsWatchAndList(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	ctx := context.Background()
	ids := make([]string, 2400)
	for i := range ids {
		ids[i] = fmt.Sprintf("nobody-%d", i)
	}
	newJob := func() *bulk.Job {
		var j *bulk.Job
		require.NoError(t, env.DB.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			var err error
			j, err = env.App.Bulk.EnqueueMultideleteTx(ctx, tx, env.Acme.Partner.ID, ids, bulk.ModeAnonymise)
			return err
		}))
		return j
	}
	run := func(jobID string, args ...string) (string, error) {
		var out, errb bytes.Buffer
		polls := 0
		r := runner{stdout: &out, stderr: &errb, lookupEnv: testEnv{"DATABASE_URL": env.DBURL}.lookup,
			wait: func(ctx context.Context, d time.Duration) error {
				polls++
				require.Less(t, polls, 20, "watch never ends")
				_, err := env.App.Bulk.ProcessChunk(ctx, env.DB.Bun, env.Acme.Partner.ID, uuidOf(t, jobID))
				return err
			}}
		err := r.run(ctx, args...)
		return out.String() + errb.String(), err
	}

	j := newJob()
	out, err := run(j.ID.String(), "jobs", "watch", "--partner", "acme", j.ID.String())
	require.NoError(t, err, out)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Equal(t, []string{
		"[------------------------------]   0%  0/2400 processed, 0 failed  pending",
		"[############------------------]  41%  1000/2400 processed, 1000 failed  running",
		"[########################------]  83%  2000/2400 processed, 2000 failed  running",
		"[##############################] 100%  2400/2400 processed, 2400 failed  running",
		"[##############################] 100%  2400/2400 processed, 2400 failed  completed",
	}, lines, "unknown users fail, one line per change")

	j2 := newJob()
	out, err = run(j2.ID.String(), "jobs", "watch", "--partner", "acme", "--json", j2.ID.String())
	require.NoError(t, err, out)
	var states []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var v jobView
		require.NoError(t, json.Unmarshal([]byte(l), &v), l)
		require.Equal(t, j2.ID.String(), v.ID)
		states = append(states, fmt.Sprintf("%s %d", v.State, v.Percent))
	}
	require.Equal(t, []string{"pending 0", "running 41", "running 83", "running 100", "completed 100"}, states)

	out, err = run("", "jobs", "list", "--partner", "acme")
	require.NoError(t, err, out)
	require.Contains(t, out, j.ID.String()+"  multidelete  completed  2400/2400 (100%)")
	out, err = run("", "jobs", "list", "--partner", "acme", "--json")
	require.NoError(t, err, out)
	var list []jobView
	require.NoError(t, json.Unmarshal([]byte(out), &list))
	require.Len(t, list, 2)

	_, err = run("", "jobs", "watch", "--partner", "acme", "not-a-uuid")
	require.ErrorIs(t, err, errUsage)
	_, err = run("", "jobs", "watch", "--partner", "acme", "00000000-0000-0000-0000-000000000000")
	require.ErrorContains(t, err, "job not found")
}

func uuidOf(t *testing.T, s string) uuid.UUID {
	t.Helper()
	id, err := uuid.Parse(s)
	require.NoError(t, err)
	return id
}
