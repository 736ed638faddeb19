// Package config loads the one Config of the perks binary from environment
// variables. Every variable, its default and its meaning live in the vars table
// below, so `perks serve --help`, the README table and the loader cannot drift.
package config

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Environment names accepted by PERKS_ENV.
const (
	EnvDevelopment = "development"
	EnvProduction  = "production"
)

// Config is everything the binary can be told from outside.
type Config struct {
	DatabaseURL string
	// ReadDatabaseURL, when set, is a streaming standby that serves the
	// export, the user lists and the ranking (docs/scaling.md).
	ReadDatabaseURL string
	// Pooler says DATABASE_URL goes through a transaction pooler
	// (PgBouncer); DirectDatabaseURL bypasses it for what needs a session.
	Pooler            string
	DirectDatabaseURL string
	Addr              string
	Env               string
	// MasterKey is the base64 of 32 random bytes; it encrypts partner secrets
	// at rest and derives the keyed hashes of external user ids.
	MasterKey  string
	SecretsDir string
	// MetricsAddr, when set, is a listener of its own for /metrics, and
	// MetricsToken a bearer token /metrics requires (see PERKS_METRICS_*).
	MetricsAddr  string
	MetricsToken string
	LogLevel     string

	MaxBodyBytes     int64
	MaxUploadBytes   int64
	DBMaxConns       int32
	ShutdownTimeout  time.Duration
	SignatureSkew    time.Duration
	JWTLeeway        time.Duration
	GraphQLMaxDepth  int
	GraphQLMaxCost   int
	GraphQLTimeout   time.Duration
	Workers          bool
	WorkersOnly      bool
	RiverMaxWorkers  int
	TrustedProxies   []*net.IPNet
	DemoWebhookURL   string
	WebhookAllowPriv bool
	WebhookRetention time.Duration
	WebhookWorkers   int
	ClaimsAtOnce     int
	GCPercent        int
	ClaimsPerGift    int
	FetchCooldown    time.Duration
	FetchPollInt     time.Duration
	PublicBaseURL    string
	RankingRefresh   time.Duration

	// Partner controls and the auth schemes of issue 7.
	RateLimitPerMinute         int
	RateLimitBurst             int
	ConsumerRateLimitPerMinute int
	ConsumerRateLimitBurst     int
	BackendTokenTTL            time.Duration
	JWKSTimeout                time.Duration
	JWKSMaxBytes               int64
	JWKSMinRefresh             time.Duration
	JWKSTTL                    time.Duration
	OriginDNSTTL               time.Duration

	// Portal mail (internal/mailer); empty SMTPURL: none.
	SMTPURL  string
	SMTPFrom string
	// RateLimitShared keeps the buckets in PostgreSQL (limits hold across
	// replicas); false keeps them per replica, in memory.
	RateLimitShared bool
}

// Development reports whether the binary runs with development conveniences
// (GraphiQL, introspection, a generated master key).
func (c *Config) Development() bool { return c.Env == EnvDevelopment }

type variable struct {
	name, def, help string
	set             func(c *Config, v string) error
}

var vars = []variable{
	{"DATABASE_URL", "", "PostgreSQL URL. Unset under `make run`/`make test`: a private cluster under .data/ is started.", func(c *Config, v string) error { c.DatabaseURL = v; return nil }},
	{"PERKS_READ_DATABASE_URL", "", "PostgreSQL URL of a streaming standby (hot standby) that serves the reads that tolerate a little lag: the incremental export, user lists (`GET /integrations/users`) and the ranking. The export's cursor stays exact: its watermark comes from what the standby has applied, and a cursor the standby has not reached yet is read on the primary. Unset: everything reads the primary.", func(c *Config, v string) error { c.ReadDatabaseURL = v; return nil }},
	{"PERKS_DATABASE_POOLER", "", "`transaction` when DATABASE_URL goes through a pooler in transaction mode (PgBouncer `pool_mode = transaction`): statements are not prepared by name and no session setting is sent; set `lock_timeout` on the role instead (docs/scaling.md). Empty: a direct connection.", func(c *Config, v string) error {
		if v != "" && v != "transaction" {
			return fmt.Errorf("must be empty or %q", "transaction")
		}
		c.Pooler = v
		return nil
	}},
	{"PERKS_DIRECT_DATABASE_URL", "", "With PERKS_DATABASE_POOLER: a direct PostgreSQL URL (bypassing the pooler) for River's job fetching and its LISTEN/NOTIFY wake-ups, which need a session of their own. Unset: River polls every PERKS_RIVER_FETCH_POLL_INTERVAL instead of being woken.", func(c *Config, v string) error { c.DirectDatabaseURL = v; return nil }},
	{"PERKS_ADDR", ":4000", "HTTP listen address.", func(c *Config, v string) error { c.Addr = v; return nil }},
	{"PERKS_METRICS_ADDR", "", "Listen address of a separate listener serving only /metrics (for example `127.0.0.1:9090`, reachable by the scraper, not the public). When set, the main listener does not serve /metrics.", func(c *Config, v string) error { c.MetricsAddr = v; return nil }},
	{"PERKS_METRICS_TOKEN", "", "Bearer token that /metrics requires (`Authorization: Bearer <token>`), on whichever listener serves it. In production /metrics is served only with this token or on PERKS_METRICS_ADDR; in development it is open.", func(c *Config, v string) error { c.MetricsToken = v; return nil }},
	{"PERKS_ENV", EnvDevelopment, "`development` or `production`. Production refuses to start without PERKS_MASTER_KEY and turns off GraphiQL and introspection.", func(c *Config, v string) error {
		if v != EnvDevelopment && v != EnvProduction {
			return fmt.Errorf("must be %q or %q", EnvDevelopment, EnvProduction)
		}
		c.Env = v
		return nil
	}},
	{"PERKS_MASTER_KEY", "", "Base64 of 32 random bytes (`openssl rand -base64 32`). Encrypts partner secrets at rest (AES-256-GCM). In development a key is generated into PERKS_SECRETS_DIR when unset.", func(c *Config, v string) error { c.MasterKey = v; return nil }},
	{"PERKS_SECRETS_DIR", ".secrets", "Where development secrets (master key, demo private keys) are written. A relative path is relative to the Perks repository root (found above the working directory), never to the working directory itself; outside the repository set an absolute path.", func(c *Config, v string) error { c.SecretsDir = v; return nil }},
	{"PERKS_LOG_LEVEL", "info", "debug, info, warn or error.", func(c *Config, v string) error { c.LogLevel = v; return nil }},
	{"PERKS_MAX_BODY_BYTES", "1048576", "Largest accepted request body; larger bodies answer 413.", intVar(func(c *Config, n int) { c.MaxBodyBytes = int64(n) })},
	{"PERKS_MAX_UPLOAD_BYTES", "8388608", "Body limit of voucher code uploads (`POST /integrations/gifts/{sku}/codes`, up to 100,000 codes per call); every other route keeps PERKS_MAX_BODY_BYTES.", intVar(func(c *Config, n int) { c.MaxUploadBytes = int64(n) })},
	{"PERKS_DB_MAX_CONNS", "32", "Size of the PostgreSQL connection pool shared by the API and River.", intVar(func(c *Config, n int) { c.DBMaxConns = int32(n) })},
	{"PERKS_SHUTDOWN_TIMEOUT", "20s", "How long a graceful shutdown waits for requests and jobs to finish.", durVar(func(c *Config, d time.Duration) { c.ShutdownTimeout = d })},
	{"PERKS_SIGNATURE_SKEW", "300s", "Accepted clock skew of signed partner requests, in both directions.", durVar(func(c *Config, d time.Duration) { c.SignatureSkew = d })},
	{"PERKS_JWT_LEEWAY", "60s", "Clock leeway when checking consumer token exp/nbf/iat.", durVar(func(c *Config, d time.Duration) { c.JWTLeeway = d })},
	{"PERKS_GRAPHQL_MAX_DEPTH", "12", "Deepest GraphQL selection accepted.", intVar(func(c *Config, n int) { c.GraphQLMaxDepth = n })},
	{"PERKS_GRAPHQL_MAX_COMPLEXITY", "1000", "Highest GraphQL query complexity accepted.", intVar(func(c *Config, n int) { c.GraphQLMaxCost = n })},
	{"PERKS_GRAPHQL_TIMEOUT", "10s", "Deadline of one GraphQL operation's resolvers; past it the operation is cancelled (its transaction rolled back) and answers `TIMEOUT`.", durVar(func(c *Config, d time.Duration) { c.GraphQLTimeout = d })},
	{"PERKS_WORKERS", "true", "Run River workers inside `serve`.", boolVar(func(c *Config, b bool) { c.Workers = b })},
	{"PERKS_RIVER_MAX_WORKERS", "50", "Concurrent River jobs per process on the default queue.", intVar(func(c *Config, n int) { c.RiverMaxWorkers = n })},
	{"PERKS_TRUSTED_PROXIES", "", "Comma-separated CIDRs whose X-Forwarded-For is believed.", func(c *Config, v string) error {
		c.TrustedProxies = nil
		for _, s := range strings.Split(v, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			if !strings.Contains(s, "/") {
				if strings.Contains(s, ":") {
					s += "/128"
				} else {
					s += "/32"
				}
			}
			_, n, err := net.ParseCIDR(s)
			if err != nil {
				return err
			}
			c.TrustedProxies = append(c.TrustedProxies, n)
		}
		return nil
	}},
	{"PERKS_DEMO_WEBHOOK_URL", "", "When set, `perks seed` gives acme a webhook endpoint with this URL.", func(c *Config, v string) error { c.DemoWebhookURL = v; return nil }},
	{"PERKS_WEBHOOK_ALLOW_PRIVATE", "false", "Allow webhook URLs on loopback/private networks (development and tests only).", boolVar(func(c *Config, b bool) { c.WebhookAllowPriv = b })},
	{"PERKS_WEBHOOK_RETENTION", "720h", "How long the webhook delivery log (deliveries and attempts) is kept after a delivery finishes.", durVar(func(c *Config, d time.Duration) { c.WebhookRetention = d })},
	{"PERKS_WEBHOOK_MAX_WORKERS", "50", "Concurrent webhook delivery jobs per process (the River `webhook` queue); the batch jobs of a transaction's several deliveries also send at most this many requests at once.", intVar(func(c *Config, n int) { c.WebhookWorkers = n })},
	{"PERKS_RIVER_FETCH_COOLDOWN", "5ms", "Shortest pause between two River job fetches while jobs keep coming; lower delivers faster at more database load (see `make bench`).", durVar(func(c *Config, d time.Duration) { c.FetchCooldown = d })},
	{"PERKS_RIVER_FETCH_POLL_INTERVAL", "100ms", "How often River polls for jobs when no insert notification arrives (scheduled retries, missed notifications).", durVar(func(c *Config, d time.Duration) { c.FetchPollInt = d })},
	{"PERKS_CLAIMS_AT_ONCE", "16", "Claims (of any gifts) a process runs at once; the others wait their turn in the process, in arrival order, not in PostgreSQL, where a storm of waiting transactions is slower for everyone (docs/catalog.md, \"A storm waits in the server\"); about 8 per core of PostgreSQL; 0 is no limit.", nonNegIntVar(func(c *Config, n int) { c.ClaimsAtOnce = n })},
	{"PERKS_GC_PERCENT", "200", "The Go garbage collector's target for `perks serve` (GOGC: the heap may grow this many percent over what is live before a collection); a request allocates much and keeps little, so a higher target spends less CPU collecting for a little more memory (docs/operations.md, \"Memory\"). A GOGC or GOMEMLIMIT in the environment is left to the Go runtime; 0 leaves Go's default (100).", nonNegIntVar(func(c *Config, n int) { c.GCPercent = n })},
	{"PERKS_CLAIMS_PER_GIFT", "0", "Claims of one gift a process runs at once, on top of PERKS_CLAIMS_AT_ONCE; 0 is no limit (a gift's claims spread over its claim slots: docs/catalog.md).", nonNegIntVar(func(c *Config, n int) { c.ClaimsPerGift = n })},
	{"PERKS_RANKING_REFRESH", "1s", "How old a replica's in-memory leaderboard of a partner may get before a request brings it up to date from the balances changed since (ranks are as of refreshedAt).", durVar(func(c *Config, d time.Duration) { c.RankingRefresh = d })},
	{"PERKS_RATE_LIMIT_PER_MINUTE", "60000", "Default sustained rate of a partner's back-end calls, across all replicas (token bucket; 0 = unlimited; see PERKS_RATE_LIMIT_SHARED). Partners can override it (`perks partner set --rate-limit`).", nonNegIntVar(func(c *Config, n int) { c.RateLimitPerMinute = n })},
	{"PERKS_RATE_LIMIT_BURST", "1000", "Default burst (bucket size) of a partner's back-end calls (0 = one minute's worth).", nonNegIntVar(func(c *Config, n int) { c.RateLimitBurst = n })},
	{"PERKS_CONSUMER_RATE_LIMIT_PER_MINUTE", "60000", "Default sustained rate of all consumer (end-user) calls of one partner; a separate bucket from the back end's (0 = unlimited).", nonNegIntVar(func(c *Config, n int) { c.ConsumerRateLimitPerMinute = n })},
	{"PERKS_CONSUMER_RATE_LIMIT_BURST", "1000", "Default burst of a partner's consumer calls (0 = one minute's worth).", nonNegIntVar(func(c *Config, n int) { c.ConsumerRateLimitBurst = n })},
	{"PERKS_RATE_LIMIT_SHARED", "true", "Keep rate-limit buckets in PostgreSQL so limits hold across replicas (each replica leases up to a fiftieth of a bucket at a time; docs/backoffice.md). false: buckets per replica, in memory (N replicas allow N times the limit).", boolVar(func(c *Config, b bool) { c.RateLimitShared = b })},
	{"PERKS_BACKEND_TOKEN_TTL", "1h", "Lifetime of the back-end tokens `POST /auth/token` issues (request-JWT scheme, seed 001).", durVar(func(c *Config, d time.Duration) { c.BackendTokenTTL = d })},
	{"PERKS_JWKS_TIMEOUT", "5s", "Timeout of one fetch of a partner's JWKS URL.", durVar(func(c *Config, d time.Duration) { c.JWKSTimeout = d })},
	{"PERKS_JWKS_MAX_BYTES", "65536", "Largest JWKS document accepted.", intVar(func(c *Config, n int) { c.JWKSMaxBytes = int64(n) })},
	{"PERKS_JWKS_MIN_REFRESH", "10s", "Minimum interval between two fetches of one partner's JWKS (a token with an unknown kid triggers a refresh).", durVar(func(c *Config, d time.Duration) { c.JWKSMinRefresh = d })},
	{"PERKS_JWKS_TTL", "15m", "Age after which a cached JWKS is fetched again on its next use (the last good set is kept if that fails).", durVar(func(c *Config, d time.Duration) { c.JWKSTTL = d })},
	{"PERKS_ORIGIN_DNS_TTL", "60s", "How long the resolved addresses of host names in partners' allowed origins are cached.", durVar(func(c *Config, d time.Duration) { c.OriginDNSTTL = d })},
	{"PERKS_PUBLIC_BASE_URL", "http://localhost:4000", "The externally visible base URL, used in printed instructions and docs links.", func(c *Config, v string) error { c.PublicBaseURL = strings.TrimRight(v, "/"); return nil }},
	{"PERKS_SMTP_URL", "", "SMTP server for portal mail (activation links): smtp://user:pass@host:587 (STARTTLS), smtps://... (TLS), smtp+plain://host:1025 (development relays). Empty: links are shown to whoever invites.", func(c *Config, v string) error { c.SMTPURL = v; return nil }},
	{"PERKS_SMTP_FROM", "", "Sender address of portal mail (required with PERKS_SMTP_URL).", func(c *Config, v string) error { c.SMTPFrom = v; return nil }},
}

func intVar(f func(*Config, int)) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return fmt.Errorf("must be a positive integer")
		}
		f(c, n)
		return nil
	}
}

func nonNegIntVar(f func(*Config, int)) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fmt.Errorf("must be a whole number, 0 or more")
		}
		f(c, n)
		return nil
	}
}

func durVar(f func(*Config, time.Duration)) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return fmt.Errorf("must be a duration such as 30s")
		}
		f(c, d)
		return nil
	}
}

func boolVar(f func(*Config, bool)) func(*Config, string) error {
	return func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("must be true or false")
		}
		f(c, b)
		return nil
	}
}

// Load reads the configuration from getenv (os.Getenv in production, a map
// in tests), applying defaults for unset or empty variables.
func Load(getenv func(string) string) (*Config, error) {
	c := &Config{}
	for _, v := range vars {
		val := getenv(v.name)
		if val == "" {
			val = v.def
		}
		if val == "" {
			continue
		}
		if err := v.set(c, val); err != nil {
			return nil, fmt.Errorf("config %s=%q: %w", v.name, val, err)
		}
	}
	if c.SecretsDir != "" && !filepath.IsAbs(c.SecretsDir) {
		if root, ok := RepoRoot(); ok {
			c.SecretsDir = filepath.Join(root, c.SecretsDir)
		}
	}
	return c, nil
}

// ModulePath identifies the Perks repository's go.mod.
const ModulePath = "github.com/perkshq/perks"

// RepoRoot finds the Perks repository above the working directory (the
// directory whose go.mod declares ModulePath). A relative PERKS_SECRETS_DIR
// is resolved against it, so `perks` run from a subdirectory uses the same
// development master key as `make run`; outside the repository it stays
// relative, and the development key refuses it (app.LoadKeyring) rather
// than creating a second key in whatever directory the command ran from.
func RepoRoot() (string, bool) {
	dir, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil {
			first, _, _ := strings.Cut(string(b), "\n")
			if strings.TrimSpace(first) == "module "+ModulePath {
				return dir, true
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

// FromEnv loads the configuration from the process environment.
func FromEnv() (*Config, error) { return Load(os.Getenv) }

// Usage writes the table of variables, for --help.
func Usage(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VARIABLE\tDEFAULT\tMEANING")
	for _, v := range vars {
		def := v.def
		if def == "" {
			def = "(unset)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", v.name, def, v.help)
	}
	tw.Flush()
}

// MarkdownTable returns the variables as a Markdown table for the README.
func MarkdownTable() string {
	var b strings.Builder
	b.WriteString("| Variable | Default | Meaning |\n|---|---|---|\n")
	for _, v := range vars {
		def := "`" + v.def + "`"
		if v.def == "" {
			def = "(unset)"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", v.name, def, v.help)
	}
	return b.String()
}
