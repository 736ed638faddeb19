package jobs_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/dbtest"
	"github.com/perkshq/perks/internal/jobs"
)

type outcomeArgs struct{ Fail, Snooze bool }

func (outcomeArgs) Kind() string { return "test_outcome" }

type outcomeWorker struct {
	river.WorkerDefaults[outcomeArgs]
	done chan struct{}
}

func (w *outcomeWorker) Work(ctx context.Context, job *river.Job[outcomeArgs]) error {
	defer func() { w.done <- struct{}{} }()
	switch {
	case job.Args.Fail:
		return river.JobCancel(errors.New("no"))
	case job.Args.Snooze:
		return river.JobSnooze(time.Hour)
	}
	return nil
}

// TestMetricsCountOutcomes: the worker middleware counts each attempt by
// kind and outcome and times it and its wait in the queue, with no query.
func TestMetricsCountOutcomes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.NewDB(t)
	reg := prometheus.NewRegistry()
	m := jobs.NewMetrics(reg)
	w := &outcomeWorker{done: make(chan struct{}, 8)}
	workers := river.NewWorkers()
	river.AddWorker(workers, w)
	c, err := jobs.New(db, workers, jobs.Options{Work: true, Log: slog.New(slog.DiscardHandler), FetchPollInterval: 20 * time.Millisecond, Metrics: m})
	require.NoError(t, err)
	require.NoError(t, db.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		for _, a := range []outcomeArgs{{}, {}, {Fail: true}, {Snooze: true}} {
			if err := c.InsertTx(ctx, tx, a, nil); err != nil {
				return err
			}
		}
		return nil
	}))
	require.NoError(t, c.Start(ctx))
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.Stop(sctx)
	})
	for range 4 {
		select {
		case <-w.done:
		case <-time.After(10 * time.Second):
			t.Fatal("the jobs were not worked")
		}
	}
	// The worker returned; the middleware counts right after.
	require.Eventually(t, func() bool {
		families, err := reg.Gather()
		var n float64
		for _, f := range families {
			if f.GetName() == "perks_river_job_attempts_total" {
				for _, mt := range f.GetMetric() {
					n += mt.GetCounter().GetValue()
				}
			}
		}
		return err == nil && n == 4
	}, 5*time.Second, 10*time.Millisecond)
	families, err := reg.Gather()
	require.NoError(t, err)
	got := map[string]float64{}
	var durations, waits uint64
	for _, f := range families {
		for _, mt := range f.GetMetric() {
			switch f.GetName() {
			case "perks_river_job_attempts_total":
				labels := map[string]string{}
				for _, l := range mt.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				require.Equal(t, "test_outcome", labels["kind"])
				got[labels["outcome"]] = mt.GetCounter().GetValue()
			case "perks_river_job_duration_seconds":
				durations += mt.GetHistogram().GetSampleCount()
			case "perks_river_job_queue_wait_seconds":
				waits += mt.GetHistogram().GetSampleCount()
			}
		}
	}
	require.Equal(t, map[string]float64{jobs.OutcomeOK: 2, jobs.OutcomeCancelled: 1, jobs.OutcomeSnoozed: 1}, got)
	require.Equal(t, uint64(4), durations)
	require.Equal(t, uint64(4), waits)
}
