package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/auth"
	"github.com/perkshq/perks/internal/bulk"
	"github.com/perkshq/perks/internal/config"
	"github.com/perkshq/perks/internal/database"
	"github.com/perkshq/perks/internal/idempotency"
	"github.com/perkshq/perks/internal/jobs"
	"github.com/perkshq/perks/internal/ledger"
	"github.com/perkshq/perks/internal/ranking"
	"github.com/perkshq/perks/internal/referral"
	"github.com/perkshq/perks/internal/report"
	"github.com/perkshq/perks/internal/tier"
	"github.com/perkshq/perks/internal/voucher"
	"github.com/perkshq/perks/internal/webhook"
)

// Workers is the one list of River workers: every job kind any process
// inserts is registered here (River refuses to insert a kind without a
// worker). Each worker lives with its domain.
func (s *Services) Workers(cfg *config.Config, db *database.DB, now func() time.Time) *river.Workers {
	w := river.NewWorkers()
	river.AddWorker(w, &auth.PruneReplayCacheWorker{DB: db.Bun, Now: now})
	river.AddWorker(w, &idempotency.PruneWorker{DB: db.Bun, Now: now})
	river.AddWorker(w, &ranking.RefreshWorker{DB: db.Bun, Service: s.Ranking})
	river.AddWorker(w, &bulk.Worker{DB: db.Bun, Service: s.Bulk})
	river.AddWorker(w, &webhook.DeliverWorker{DB: db.Bun, Webhooks: s.Webhooks})
	river.AddWorker(w, &webhook.DeliverBatchWorker{DB: db.Bun, Webhooks: s.Webhooks, Sends: cfg.WebhookWorkers})
	river.AddWorker(w, &webhook.ReplayWorker{DB: db.Bun, Webhooks: s.Webhooks})
	river.AddWorker(w, &webhook.PruneWorker{DB: db.Bun, Webhooks: s.Webhooks, Retention: cfg.WebhookRetention})
	river.AddWorker(w, &voucher.ExpireWorker{DB: db.Bun, Vouchers: s.Vouchers})
	river.AddWorker(w, &ledger.LotsWorker{DB: db.Bun, Now: now, Events: s.Events,
		Activated: func(ctx context.Context, tx bun.Tx, partnerID uuid.UUID, users []uuid.UUID) error {
			_, err := s.Tiers.EvaluateTx(ctx, tx, partnerID, users...)
			return err
		}})
	river.AddWorker(w, &tier.ReviewWorker{DB: db.Bun, Service: s.Tiers, Now: now})
	river.AddWorker(w, &ledger.LotWarningsWorker{DB: db.Bun, Now: now, Events: s.Events})
	river.AddWorker(w, &referral.RewardWorker{DB: db.Bun, Service: s.Referrals, Now: now})
	river.AddWorker(w, &report.FoldWorker{DB: db.Bun, Now: now})
	return w
}

// Periodic is the one list of periodic jobs, run by the elected leader.
func Periodic(cfg *config.Config) []*river.PeriodicJob {
	var p []*river.PeriodicJob
	p = append(p, auth.Periodic()...)
	p = append(p, idempotency.Periodic()...)
	p = append(p, webhook.Periodic()...)
	p = append(p, voucher.Periodic()...)
	p = append(p, ledger.Periodic()...)
	p = append(p, tier.Periodic()...)
	p = append(p, referral.Periodic()...)
	p = append(p, report.Periodic()...)
	return p
}

func workPool(db *database.DB) *pgxpool.Pool {
	if db == nil {
		return nil
	}
	return db.Pool
}

// ConnectJobs builds River's clients with every worker and periodic job
// and gives the services that insert jobs (bulk, webhook) the insert
// client. With cfg.Workers unset the clients only insert (API-only
// replicas, operator commands).
func (s *Services) ConnectJobs(cfg *config.Config, log *slog.Logger, db *database.DB, now func() time.Time) (*jobs.Clients, error) {
	c, err := jobs.New(db, s.Workers(cfg, db, now), jobs.Options{
		Work:              cfg.Workers,
		MaxWorkers:        cfg.RiverMaxWorkers,
		Log:               log,
		FetchCooldown:     cfg.FetchCooldown,
		FetchPollInterval: cfg.FetchPollInt,
		Queues:            map[string]int{webhook.Queue: cfg.WebhookWorkers},
		Periodic:          Periodic(cfg),
		Metrics:           s.JobMetrics,
		WorkPool:          workPool(s.DirectDB),
		PollOnly:          cfg.Pooler != "" && s.DirectDB == nil,
		Tracer:            s.JobTracer,
	})
	if err != nil {
		return nil, err
	}
	s.Bulk.Jobs = c
	s.Webhooks.Jobs = c
	return c, nil
}
