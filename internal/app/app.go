// Package app is the composition root: it builds the pool, the services,
// River and the HTTP handler from a Config, and runs them until shutdown.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/uptrace/bun"
	"go.opentelemetry.io/otel/trace"

	"github.com/perkshq/perks/graph"
	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/auth"
	"github.com/perkshq/perks/internal/config"
	"github.com/perkshq/perks/internal/console"
	"github.com/perkshq/perks/internal/database"
	"github.com/perkshq/perks/internal/httpserver"
	"github.com/perkshq/perks/internal/jobs"
	"github.com/perkshq/perks/internal/keyring"
	"github.com/perkshq/perks/internal/mailer"
	"github.com/perkshq/perks/internal/merchantportal"
	"github.com/perkshq/perks/internal/partner"
	"github.com/perkshq/perks/internal/portal"
	"github.com/perkshq/perks/internal/ratelimit"
	"github.com/perkshq/perks/internal/report"
	"github.com/perkshq/perks/internal/request"
	"github.com/perkshq/perks/internal/rest"
	"github.com/perkshq/perks/internal/tracing"
	"github.com/perkshq/perks/internal/webhook"
	"github.com/perkshq/perks/web"
)

// App is a running Perks process: the services of NewServices (embedded),
// River's clients and the HTTP handler.
type App struct {
	*Services
	Config *config.Config
	Log    *slog.Logger
	DB     *database.DB
	// ReadDB, when set, is a streaming standby serving the export, user
	// lists and ranking (PERKS_READ_DATABASE_URL).
	ReadDB   *database.DB
	directDB *database.DB
	// stopAuthCache stops the partner cache's listener (StopBackground).
	stopAuthCache func()
	Keys          *keyring.Keyring
	Jobs          *jobs.Clients
	Handler       http.Handler
	// Routes lists the "METHOD /path" patterns the handler serves.
	Routes   []string
	Registry *prometheus.Registry
	Now      func() time.Time
	// Resolver resolves host names of partners' allowed origins.
	Resolver auth.Resolver
	// Portal is the partner portal (/portal); tests set its sign-in limit
	// through it.
	Portal *portal.Portal
	// Console is the platform console (/admin); Usage counts each
	// partner's requests for its usage charts (flushed by Serve).
	Console *console.Console
	Usage   *report.RequestCounter
	console consoleParts
	// MerchantPortal is the merchant portal and till (/merchant).
	MerchantPortal *merchantportal.Portal
	// Tracer is nil unless WithTracerProvider turned tracing on.
	Tracer trace.Tracer
}

// LoadKeyring returns the master keyring: PERKS_MASTER_KEY, or in development
// a key generated into the secrets directory (with a warning).
func LoadKeyring(cfg *config.Config, log *slog.Logger) (*keyring.Keyring, error) {
	if cfg.MasterKey != "" {
		return keyring.Parse(cfg.MasterKey)
	}
	if !cfg.Development() {
		return nil, errors.New("PERKS_MASTER_KEY is required in production (generate one with: openssl rand -base64 32)")
	}
	if !filepath.IsAbs(cfg.SecretsDir) {
		return nil, fmt.Errorf("PERKS_MASTER_KEY is unset and PERKS_SECRETS_DIR (%q) is relative while the working directory is not inside the Perks repository: "+
			"run from the repository, or set PERKS_SECRETS_DIR to the absolute path of the secrets directory the server uses, or set PERKS_MASTER_KEY "+
			"(a development key is never created relative to the working directory)", cfg.SecretsDir)
	}
	k, created, err := keyring.LoadOrCreateDevKey(cfg.SecretsDir)
	if err != nil {
		return nil, fmt.Errorf("development master key: %w", err)
	}
	log.Warn("PERKS_MASTER_KEY is unset: using the development key in the secrets directory; never do this in production",
		"dir", cfg.SecretsDir, "created", created)
	return k, nil
}

// LoadKeyringFor is LoadKeyring for a process about to use db: in
// development it refuses to generate a fresh key for a database that already
// records one, and it checks that the key is the database's
// (database.CheckMasterKey). The server and every CLI command that seals or
// unseals call it.
func LoadKeyringFor(ctx context.Context, cfg *config.Config, log *slog.Logger, db bun.IDB) (*keyring.Keyring, error) {
	if cfg.MasterKey == "" && cfg.Development() && filepath.IsAbs(cfg.SecretsDir) {
		if _, err := os.Stat(keyring.DevKeyPath(cfg.SecretsDir)); errors.Is(err, os.ErrNotExist) {
			recorded, err := database.MasterKeyRecorded(ctx, db)
			if err != nil {
				return nil, err
			}
			if recorded {
				return nil, fmt.Errorf("%w: PERKS_MASTER_KEY is unset and %s does not exist; refusing to generate a new development key. "+
					"Set PERKS_SECRETS_DIR to the directory the server uses, or PERKS_MASTER_KEY", database.ErrMasterKeyMismatch, keyring.DevKeyPath(cfg.SecretsDir))
			}
		}
	}
	k, err := LoadKeyring(cfg, log)
	if err != nil {
		return nil, err
	}
	if err := database.CheckMasterKey(ctx, db, k); err != nil {
		return nil, err
	}
	return k, nil
}

// Option adjusts New.
type Option func(*App)

// WithClock replaces the wall clock of every service (tests).
func WithClock(now func() time.Time) Option { return func(a *App) { a.Now = now } }

// WithResolver replaces DNS for allowed-origin host names (tests).
func WithResolver(r auth.Resolver) Option { return func(a *App) { a.Resolver = r } }

// WithDirectDB gives River's work client a connection that bypasses a
// transaction pooler.
func WithDirectDB(db *database.DB) Option { return func(a *App) { a.directDB = db } }

// WithReadDB serves the lag-tolerant reads from a standby.
func WithReadDB(db *database.DB) Option { return func(a *App) { a.ReadDB = db } }

// WithTracerProvider turns tracing on with tp (tracing.FromEnv in `perks
// serve`, an in-memory exporter in tests): spans of HTTP requests, SQL
// statements, River jobs and webhook deliveries. Without it nothing is
// installed and tracing costs nothing (docs/tracing.md).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(a *App) { a.Tracer = tracing.Tracer(tp) }
}

// New builds the application on an open database.
func New(cfg *config.Config, log *slog.Logger, db *database.DB, keys *keyring.Keyring, opts ...Option) (*App, error) {
	// Every warning and error line carries request_id and every error line
	// a code, whoever logs it (River included).
	log = slog.New(request.LogHandler(log.Handler()))
	a := &App{Config: cfg, Log: log, DB: db, Keys: keys, Now: time.Now}
	for _, o := range opts {
		o(a)
	}
	if a.Tracer != nil {
		// Every service of this app runs its SQL through a bun handle
		// with the span hook (the caller's handle is left as it was).
		traced := *db
		traced.Bun = db.Bun.WithQueryHook(&tracing.BunHook{Tracer: a.Tracer})
		db, a.DB = &traced, &traced
	}
	a.Services = NewServices(cfg, log, db, keys, a.now)
	a.DirectDB = a.directDB
	a.startAuthCache()
	if a.ReadDB != nil {
		a.Export.Pool, a.Export.Primary = a.ReadDB.Pool, db.Pool
	}
	if a.Tracer != nil {
		a.Webhooks.Sender.Tracer = a.Tracer
		a.JobTracer = a.Tracer
	}
	if cfg.WebhookAllowPriv && !cfg.Development() {
		log.Warn("PERKS_WEBHOOK_ALLOW_PRIVATE is set in production: webhook endpoints may reach private networks")
	}
	a.Registry = prometheus.NewRegistry()
	a.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a.Registry.MustRegister(newDBCollector(db, []string{jobs.QueueDefault, jobs.QueueMaintenance, webhook.Queue}))
	a.JobMetrics = jobs.NewMetrics(a.Registry)
	a.Webhooks.Metrics = webhook.NewMetrics(a.Registry)

	var err error
	if a.Jobs, err = a.ConnectJobs(cfg, log, db, a.now); err != nil {
		return nil, err
	}

	if a.Resolver == nil {
		a.Resolver = net.DefaultResolver
	}
	api := &rest.API{
		DB: db, ReadDB: a.ReadDB, Partners: a.Partners, Users: a.Users, Ledger: a.Ledger, Earning: a.Earning, Bulk: a.Bulk, Ranking: a.Ranking, Program: a.Program, Tiers: a.Tiers,
		Export: a.Export, Content: a.Content, Webhooks: a.Webhooks, MaxBodyBytes: cfg.MaxBodyBytes, Log: log, Now: a.now,
		Catalog: a.Catalog, Vouchers: a.Vouchers, Merchants: a.Merchants, MaxUploadBytes: cfg.MaxUploadBytes,
		Campaigns: a.Campaigns, Referrals: a.Referrals,
		PartnerAuth: &auth.PartnerAuthenticator{
			DB: db.Bun, Partners: a.Partners, Skew: cfg.SignatureSkew, Now: a.now,
			Origins: &auth.OriginChecker{Resolver: a.Resolver, TTL: cfg.OriginDNSTTL, StaleFor: time.Hour, Now: a.now},
		},
		ConsumerAuth: &auth.ConsumerAuthenticator{
			DB: db.Bun, Partners: a.Partners, Users: a.Users, Leeway: cfg.JWTLeeway, Now: a.now,
			JWKS: &auth.JWKS{
				Client: &http.Client{Timeout: cfg.JWKSTimeout}, Timeout: cfg.JWKSTimeout, MaxBytes: cfg.JWKSMaxBytes,
				MinInterval: cfg.JWKSMinRefresh, TTL: cfg.JWKSTTL, AllowHTTP: cfg.Development(), Now: a.now, Log: log,
			},
		},
		RateLimits: &rest.RateLimits{
			Limiter:  &ratelimit.Limiter{Now: a.now},
			Shared:   a.sharedLimiter(cfg, db, log),
			Partner:  ratelimit.Limit{PerMinute: cfg.RateLimitPerMinute, Burst: cfg.RateLimitBurst},
			Consumer: ratelimit.Limit{PerMinute: cfg.ConsumerRateLimitPerMinute, Burst: cfg.ConsumerRateLimitBurst},
		},
		TrustedProxies:  cfg.TrustedProxies,
		BackendTokenTTL: cfg.BackendTokenTTL,
		Audit:           a.Audit,
		Credentials:     a.Credentials,
	}
	gql := graph.NewServer(&graph.Resolver{
		DB: db, Partners: a.Partners, Users: a.Users, Ledger: a.Ledger, Earning: a.Earning, Ranks: a.Ranking, Content: a.Content,
		CatalogSvc: a.Catalog, VoucherSvc: a.Vouchers, TierSvc: a.Tiers, Referrals: a.Referrals, Now: a.now,
	}, graph.Options{
		MaxDepth: cfg.GraphQLMaxDepth, MaxComplexity: cfg.GraphQLMaxCost, Introspection: cfg.Development(), Log: log,
		Timeout: cfg.GraphQLTimeout, Metrics: a.Registry,
	})
	var mail portal.Mailer
	if cfg.SMTPURL != "" {
		m, err := mailer.New(cfg.SMTPURL, cfg.SMTPFrom)
		if err != nil {
			return nil, err
		}
		mail = m
	}
	a.Usage = &report.RequestCounter{}
	a.Handler, a.Routes = httpserver.New(httpserver.Options{
		DB: db, API: api, GraphQL: gql, GraphiQL: cfg.Development(), Registry: a.Registry, Log: log,
		// /metrics is never public in production: a token, or a listener
		// of its own (Serve), or not at all.
		Metrics:      cfg.MetricsAddr == "" && (cfg.MetricsToken != "" || cfg.Development()),
		MetricsToken: cfg.MetricsToken,
		PublicURL:    cfg.PublicBaseURL,
		Tracer:       a.Tracer,
		CORS: &httpserver.CORS{
			Origins: func(ctx context.Context) ([]string, error) { return a.Partners.CORSOrigins(ctx, db.Bun) },
			Now:     a.now, Log: log,
		},
		// Each partner's requests, for the console's usage charts.
		Usage: a.Usage,
		Web: func(mux *http.ServeMux) {
			web.Register(mux, web.Options{FrameAncestors: a.frameAncestors, Log: log})
			a.Portal = &portal.Portal{
				DB: db.Bun, Accounts: a.Accounts, Audit: a.Audit, Partners: a.Partners, Log: log,
				BaseURL: cfg.PublicBaseURL, Secure: !cfg.Development(), Limiter: &ratelimit.Limiter{Now: a.now}, Mailer: mail,
				Now: a.now,
				CMS: &portal.CMS{Catalog: a.Catalog, Content: a.Content, Earning: a.Earning, Program: a.Program, Tiers: a.Tiers,
					Campaigns: a.Campaigns, Referrals: a.Referrals, Bulk: a.Bulk},
				// The Users, Webhooks and Exports & jobs pages.
				Users: a.Users, Ledger: a.Ledger, Vouchers: a.Vouchers, Webhooks: a.Webhooks, Export: a.Export, Bulk: a.Bulk,
			}
			a.Portal.Credentials, a.Portal.ConsumerAuth, a.Portal.Webhooks = a.Credentials, api.ConsumerAuth, a.Webhooks
			a.Portal.Register(mux)
			a.mountConsole(mux, mail)
			a.MerchantPortal = &merchantportal.Portal{
				DB: db.Bun, Accounts: a.Accounts, Audit: a.Audit, Merchants: a.Merchants, Vouchers: a.Vouchers, Partners: a.Partners, Log: log,
				BaseURL: cfg.PublicBaseURL, Secure: !cfg.Development(), Limiter: &ratelimit.Limiter{Now: a.now}, Mailer: mail, Now: a.now,
			}
			a.MerchantPortal.Register(mux)
		},
	})
	return a, nil
}

// WebhookPolicy is where webhook deliveries may go under cfg: https only in
// production, private networks only when explicitly allowed.
func WebhookPolicy(cfg *config.Config) *webhook.URLPolicy {
	return &webhook.URLPolicy{RequireHTTPS: !cfg.Development(), AllowPrivate: cfg.WebhookAllowPriv, Development: cfg.Development()}
}

// frameAncestors is the webview's frame-ancestors list of the partner with
// this slug (none for an unknown slug). The stored list is checked again so
// that a row edited by hand can never inject into the CSP header.
func (a *App) frameAncestors(ctx context.Context, slug string) ([]string, error) {
	p, err := a.Partners.BySlug(ctx, a.DB.Bun, slug)
	if apperr.Is(err, apperr.CodeNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return partner.ValidateFrameAncestors(p.FrameAncestors)
}

// now indirects through a.Now so tests can swap the clock after New.
func (a *App) now() time.Time { return a.Now() }

// Serve runs HTTP and River until ctx is cancelled, then shuts down
// gracefully: stop accepting, drain requests, then stop River (letting
// running jobs finish within the shutdown timeout).
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           a.Handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      5 * time.Minute, // exports stream for a while
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    httpserver.ServerMaxHeaderBytes, // the 64 KiB limit answers problem+json (httpserver.MaxHeaderBytes)
		ErrorLog:          slog.NewLogLogger(a.Log.Handler(), slog.LevelWarn),
	}
	metrics, err := a.listenMetrics()
	if err != nil {
		return err
	}
	if err := a.Jobs.Start(ctx); err != nil {
		return fmt.Errorf("start river: %w", err)
	}
	usageCtx, stopUsage := context.WithCancel(context.Background())
	usageDone := make(chan struct{})
	go func() { a.flushUsage(usageCtx); close(usageDone) }()
	defer func() { stopUsage(); <-usageDone; a.StopBackground() }()
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	if metrics != nil {
		go func() { errc <- metrics.srv.Serve(metrics.ln) }()
	}
	a.Log.Info("serving", "addr", ln.Addr().String(), "env", a.Config.Env, "workers", a.Config.Workers)

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	a.Log.Info("shutting down", "timeout", a.Config.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), a.Config.ShutdownTimeout)
	defer cancel()
	httpErr := srv.Shutdown(sctx)
	if metrics != nil {
		httpErr = errors.Join(httpErr, metrics.srv.Shutdown(sctx))
	}
	riverErr := a.Jobs.Stop(sctx)
	a.Log.Info("stopped")
	return errors.Join(httpErr, riverErr)
}

// metricsServer is the listener of its own that serves /metrics
// (PERKS_METRICS_ADDR).
type metricsServer struct {
	ln  net.Listener
	srv *http.Server
}

// listenMetrics opens PERKS_METRICS_ADDR when set (nil otherwise), and
// warns when production serves no metrics at all.
func (a *App) listenMetrics() (*metricsServer, error) {
	if a.Config.MetricsAddr == "" {
		if !a.Config.Development() && a.Config.MetricsToken == "" {
			a.Log.Warn("/metrics is off: set PERKS_METRICS_ADDR or PERKS_METRICS_TOKEN to scrape it")
		}
		return nil, nil
	}
	ln, err := net.Listen("tcp", a.Config.MetricsAddr)
	if err != nil {
		return nil, fmt.Errorf("metrics listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", httpserver.MetricsHandler(a.Registry, a.Config.MetricsToken, a.Log))
	a.Log.Info("serving metrics", "addr", ln.Addr().String())
	return &metricsServer{ln: ln, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}}, nil
}

// WorkOnly runs River alone (`perks serve --workers-only`).
func (a *App) WorkOnly(ctx context.Context) error {
	if err := a.Jobs.Start(ctx); err != nil {
		return fmt.Errorf("start river: %w", err)
	}
	defer a.StopBackground()
	a.Log.Info("working jobs only")
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), a.Config.ShutdownTimeout)
	defer cancel()
	return a.Jobs.Stop(sctx)
}
