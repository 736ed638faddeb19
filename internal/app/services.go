package app

import (
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/perkshq/perks/internal/account"
	"github.com/perkshq/perks/internal/audit"
	"github.com/perkshq/perks/internal/bulk"
	"github.com/perkshq/perks/internal/campaign"
	"github.com/perkshq/perks/internal/catalog"
	"github.com/perkshq/perks/internal/config"
	"github.com/perkshq/perks/internal/content"
	"github.com/perkshq/perks/internal/credential"
	"github.com/perkshq/perks/internal/database"
	"github.com/perkshq/perks/internal/earning"
	"github.com/perkshq/perks/internal/event"
	"github.com/perkshq/perks/internal/export"
	"github.com/perkshq/perks/internal/jobs"
	"github.com/perkshq/perks/internal/keyring"
	"github.com/perkshq/perks/internal/ledger"
	"github.com/perkshq/perks/internal/merchant"
	"github.com/perkshq/perks/internal/partner"
	"github.com/perkshq/perks/internal/program"
	"github.com/perkshq/perks/internal/ranking"
	"github.com/perkshq/perks/internal/ratelimit"
	"github.com/perkshq/perks/internal/referral"
	"github.com/perkshq/perks/internal/tier"
	"github.com/perkshq/perks/internal/user"
	"github.com/perkshq/perks/internal/voucher"
	"github.com/perkshq/perks/internal/webhook"
)

// Services are every domain service of a process, wired to each other once.
// The server (New), the seed command and every operator command build them
// with NewServices, so a rule configured here (the erase steps, the webhook
// outbox, the clock) holds for all of them.
type Services struct {
	Events    *event.Recorder
	Partners  *partner.Service
	Users     *user.Service
	Ledger    *ledger.Service
	Earning   *earning.Service
	Bulk      *bulk.Service
	Ranking   *ranking.Service
	Content   *content.Service
	Webhooks  *webhook.Service
	Merchants *merchant.Service
	Catalog   *catalog.Service
	Vouchers  *voucher.Service
	Export    *export.Service
	Program   *program.Service
	Campaigns *campaign.Service
	Tiers     *tier.Service
	Referrals *referral.Service
	Audit     *audit.Log
	Accounts  *account.Service
	// Credentials manages partner credentials and consumer keys for the
	// partner API and the portal.
	Credentials *credential.Service

	// JobMetrics, when set before ConnectJobs, observes the jobs this
	// process works (the server sets it; operator commands leave it nil).
	JobMetrics *jobs.Metrics
	// DirectDB, when set before ConnectJobs, is a connection that bypasses
	// a transaction pooler: River's work client fetches and listens on it
	// (PERKS_DIRECT_DATABASE_URL).
	DirectDB *database.DB
	// JobTracer, when set before ConnectJobs, carries traces from job
	// inserts to their work (tracing on).
	JobTracer trace.Tracer
}

// NewServices builds every domain service on db with keys (no HTTP, no
// River: services that insert jobs get their inserter from ConnectJobs, and
// until then refuse to dispatch). now is the clock of every service; nil
// means time.Now.
func NewServices(cfg *config.Config, log *slog.Logger, db *database.DB, keys *keyring.Keyring, now func() time.Time) *Services {
	if now == nil {
		now = time.Now
	}
	s := &Services{}
	s.Events = &event.Recorder{Now: now}
	s.Partners = &partner.Service{Keys: keys, Now: now, Log: log}
	s.Credentials = &credential.Service{Partners: s.Partners, AllowHTTPJWKS: cfg.Development()}
	s.Users = &user.Service{Keys: keys, Events: s.Events, Now: now, Erase: EraseSteps()}
	s.Ledger = &ledger.Service{Events: s.Events, Now: now}
	s.Earning = &earning.Service{Ledger: s.Ledger, Users: s.Users, Now: now}
	s.Program = &program.Service{Now: now, PartnerChanged: s.Partners.Changed}
	s.Campaigns = &campaign.Service{Now: now}
	s.Earning.Campaigns = s.Campaigns.EarnModifier()
	s.Tiers = &tier.Service{Events: s.Events, Now: now}
	s.Earning.Tiers = s.Tiers
	s.Earning.Tier = earning.TierModifier()
	s.Referrals = &referral.Service{Ledger: s.Ledger, Events: s.Events, Keys: keys, Limiter: &ratelimit.Limiter{Now: now}, Now: now}
	s.Earning.Referrals = s.Referrals
	s.Merchants = &merchant.Service{Skew: cfg.SignatureSkew, Now: now}
	s.Catalog = &catalog.Service{Merchants: s.Merchants, Now: now}
	s.Vouchers = &voucher.Service{Catalog: s.Catalog, Ledger: s.Ledger, Events: s.Events, Keys: keys, Now: now, Gate: &voucher.ClaimGate{AtOnce: cfg.ClaimsAtOnce, PerGift: cfg.ClaimsPerGift}}
	s.Ranking = &ranking.Service{Now: now, SyncEvery: cfg.RankingRefresh}
	s.Content = &content.Service{Earning: s.Earning, Now: now}
	s.Bulk = &bulk.Service{Users: s.Users, Earning: s.Earning, Partners: s.Partners, Events: s.Events, Now: now}
	s.Bulk.Catalog = s.Catalog
	policy := WebhookPolicy(cfg)
	s.Webhooks = &webhook.Service{
		Keys: keys, Users: s.Users, Policy: policy, Sender: webhook.NewSender(policy), Log: log, Now: now,
	}
	s.Events.Outbox = s.Webhooks
	s.Export = &export.Service{Pool: db.Pool, Keys: keys}
	s.Audit = &audit.Log{Now: now}
	s.Accounts = &account.Service{Keys: keys, Audit: s.Audit, Now: now}
	return s
}

// EraseSteps is what erasing users does besides deleting their rows, in
// order: every table keyed by user that does not cascade from users, and
// every count that must outlive the erased rows. user.Service.EraseTx runs
// them, then deletes the users (which cascades to balances, ledger entries,
// earning counters, vouchers and claim counters). A new table with a
// user_id column either cascades or gets a step here
// (TestEraseCoversEveryUserTable).
func EraseSteps() []user.EraseStep {
	return []user.EraseStep{
		{Name: "idempotency keys", Table: "idempotency_keys", SQL: "DELETE FROM idempotency_keys WHERE partner_id = ? AND user_id IN (?)"},
		{Name: "events", Table: "events", SQL: "DELETE FROM events WHERE partner_id = ? AND user_id IN (?)"},
		voucher.EraseClaimsStep,
	}
}
