// Package jobs wires River into Perks, and nothing else: the client that
// works jobs on the pgx pool, the insert-only client over database/sql that
// lets domain services insert jobs with InsertTx inside their bun
// transactions, the queues and the timeouts every worker keeps to. It
// imports no domain package: workers and their periodic jobs live with their
// domain (voucher expiry in voucher, replay-cache pruning in auth, ...), and
// the composition root (internal/app) registers them all in one list.
// Domain packages insert through a small interface of their own
// (bulk.Inserter, webhook.Inserter) that *Clients implements.
package jobs

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
	"github.com/uptrace/bun"
	"go.opentelemetry.io/otel/trace"

	"github.com/perkshq/perks/internal/database"
)

// Queues.
const (
	QueueDefault     = river.QueueDefault
	QueueMaintenance = "maintenance"
)

// Crash recovery. A worker killed mid-job (kill -9, OOM, lost node) leaves
// its River row `running`; River's JobRescuer, run by the elected leader,
// is what makes it workable again. Its semantics in River v0.51
// (internal/maintenance/job_rescuer.go; unchanged on these points since
// v0.41, where they were first checked):
//
//   - it runs every 30 s (JobRescuerIntervalDefault, not configurable), the
//     first run as soon as a client becomes leader (after a jitter of up to
//     1 s);
//   - it selects running jobs whose attempted_at is older than
//     RescueStuckJobsAfter, then leaves alone any whose timeout has not
//     passed either (makeRetryDecision: "job not timed out yet due to
//     kind-specific timeout value; ignore"): a job is rescued only after
//     max(RescueStuckJobsAfter, timeout), where the timeout is the worker's
//     Timeout or, when that is zero, the client's JobTimeout (since
//     v0.41.1; a negative timeout means never rescued);
//   - a rescued job becomes retryable at the worker's NextRetry (or the
//     client's retry policy), and the leader's scheduler makes it available
//     within 5 s of that; it counts as a failed attempt ("Stuck job rescued
//     by JobRescuer"). Since v0.48 the rescue only updates a job that is
//     still running the attempt it examined: one that finished, or was
//     fetched again, in between is left as it is;
//   - a dead leader's lease runs out after 15 s (elect interval 5 s + 10 s
//     padding), so another replica, or the same one restarted, leads again
//     within about 20 s.
//
// A graceful stop is not a crash: since v0.44 a job whose context Stop
// cancels (StopAndCancel) and that returns the cancellation is made
// available again at once, without spending an attempt or recording an
// error.
//
// River's defaults (rescue after an hour, or JobTimeout + 1 h) therefore
// left a crashed job alone for an hour. We rescue after one minute, so every
// worker's attempt must be shorter than that: JobTimeout, the default, is
// one minute too (River refuses RescueStuckJobsAfter < JobTimeout), long
// work yields and resumes in short attempts (bulk.Worker), and a worker
// that needs longer says so with its own Timeout, after which it is rescued
// (ranking refresh: 10 min). A crashed bulk job is thus worked again at most
// RescueStuckJobsAfter + 30 s + its NextRetry + 5 s after its attempt began,
// under two minutes, on any replica; a replica restarted later picks it up
// within about 20 s of starting.
const (
	RescueStuckJobsAfter = time.Minute
	JobTimeout           = time.Minute
)

// MaintenanceTimeout bounds one run of a maintenance job (the workers of
// QueueMaintenance give it as their Timeout). Each is idempotent and
// periodic, so a run cut short is simply continued by the next one.
const MaintenanceTimeout = 2 * time.Minute

// Options configure the clients.
type Options struct {
	// Work makes the pgx client fetch and work jobs; without it the process
	// only inserts (an API-only replica).
	Work       bool
	MaxWorkers int
	Log        *slog.Logger
	// FetchCooldown and FetchPollInterval trade database load for latency;
	// River's defaults (100 ms / 1 s) cap delivery throughput, so we set
	// them deliberately (see `make bench`).
	FetchCooldown     time.Duration
	FetchPollInterval time.Duration
	Periodic          []*river.PeriodicJob
	// Queues are worked next to the default and maintenance queues, with
	// the given number of workers each (domain queues such as webhooks).
	Queues map[string]int
	// Metrics, when set, observes every job this process works.
	Metrics *Metrics
	// WorkPool, when set, is the pool of the work client instead of the
	// database's: a direct connection when the database's goes through a
	// transaction pooler, since River's LISTEN needs a session.
	WorkPool *pgxpool.Pool
	// PollOnly fetches jobs every FetchPollInterval without listening for
	// insert notifications (behind a transaction pooler without WorkPool).
	PollOnly bool
	// Tracer, when set, carries traces from inserts to work (Tracing).
	Tracer trace.Tracer
}

// Clients are the two River clients over the one pool.
type Clients struct {
	Work   *river.Client[pgx.Tx]
	Insert *river.Client[*sql.Tx]
	works  bool
}

// New builds the clients. Every worker must be registered in workers before.
func New(db *database.DB, workers *river.Workers, o Options) (*Clients, error) {
	if o.FetchCooldown == 0 {
		o.FetchCooldown = 20 * time.Millisecond
	}
	if o.FetchPollInterval == 0 {
		o.FetchPollInterval = 250 * time.Millisecond
	}
	if o.MaxWorkers == 0 {
		o.MaxWorkers = 50
	}
	cfg := &river.Config{
		Logger:                      o.Log,
		Workers:                     workers,
		FetchCooldown:               o.FetchCooldown,
		FetchPollInterval:           o.FetchPollInterval,
		JobTimeout:                  JobTimeout,
		RescueStuckJobsAfter:        RescueStuckJobsAfter,
		CompletedJobRetentionPeriod: 24 * time.Hour,
		PeriodicJobs:                o.Periodic,
		PollOnly:                    o.PollOnly,
	}
	if o.Metrics != nil {
		cfg.Middleware = []rivertype.Middleware{o.Metrics}
	}
	var insertMiddleware []rivertype.Middleware
	if o.Tracer != nil {
		tr := NewTracing(o.Tracer)
		cfg.Middleware = append(cfg.Middleware, tr)
		insertMiddleware = append(insertMiddleware, tr)
	}
	if o.Work {
		cfg.Queues = map[string]river.QueueConfig{
			QueueDefault:     {MaxWorkers: o.MaxWorkers},
			QueueMaintenance: {MaxWorkers: 2},
		}
		for name, n := range o.Queues {
			cfg.Queues[name] = river.QueueConfig{MaxWorkers: n}
		}
	}
	pool := db.Pool
	if o.WorkPool != nil {
		pool = o.WorkPool
	}
	work, err := river.NewClient(riverpgxv5.New(pool), cfg)
	if err != nil {
		return nil, fmt.Errorf("river client: %w", err)
	}
	// The insert client notifies workers of new jobs at most once per its
	// FetchCooldown per queue: left at River's default (100 ms) it would add
	// up to 100 ms to every job inserted inside a transaction.
	insert, err := river.NewClient(riverdatabasesql.New(db.SQL), &river.Config{Logger: o.Log, Workers: workers, FetchCooldown: o.FetchCooldown, Middleware: insertMiddleware})
	if err != nil {
		return nil, fmt.Errorf("river insert client: %w", err)
	}
	return &Clients{Work: work, Insert: insert, works: o.Work}, nil
}

// InsertTx inserts a job inside a bun transaction: it becomes visible to
// workers only if the transaction commits.
func (c *Clients) InsertTx(ctx context.Context, tx bun.Tx, args river.JobArgs, opts *river.InsertOpts) error {
	if _, err := c.Insert.InsertTx(ctx, tx.Tx, args, opts); err != nil {
		return fmt.Errorf("insert %s job: %w", args.Kind(), err)
	}
	return nil
}

// InsertIDTx is InsertTx for callers that report the job: it returns the
// inserted job's id.
func (c *Clients) InsertIDTx(ctx context.Context, tx bun.Tx, args river.JobArgs, opts *river.InsertOpts) (int64, error) {
	res, err := c.Insert.InsertTx(ctx, tx.Tx, args, opts)
	if err != nil {
		return 0, fmt.Errorf("insert %s job: %w", args.Kind(), err)
	}
	return res.Job.ID, nil
}

// InsertManyTx inserts several jobs in one statement inside a bun transaction.
func (c *Clients) InsertManyTx(ctx context.Context, tx bun.Tx, params []river.InsertManyParams) error {
	if len(params) == 0 {
		return nil
	}
	if _, err := c.Insert.InsertManyTx(ctx, tx.Tx, params); err != nil {
		return fmt.Errorf("insert %d jobs: %w", len(params), err)
	}
	return nil
}

// Start starts working jobs (a no-op for insert-only processes).
func (c *Clients) Start(ctx context.Context) error {
	if !c.works {
		return nil
	}
	return c.Work.Start(ctx)
}

// Stop waits for running jobs to finish, then cancels them at ctx's deadline.
func (c *Clients) Stop(ctx context.Context) error {
	if !c.works {
		return nil
	}
	err := c.Work.Stop(ctx)
	if err == nil || ctx.Err() == nil {
		return err
	}
	return c.Work.StopAndCancel(context.Background())
}
