// Package apptest runs a whole Perks application for tests: its own
// database cloned from the migrated template, the demo partners seeded, an
// httptest server, a controllable clock, and clients that sign partner
// requests and mint consumer tokens the way the seeds' own recipes do.
// Only _test.go files import it.
package apptest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"

	"github.com/perkshq/perks/internal/app"
	"github.com/perkshq/perks/internal/auth"
	"github.com/perkshq/perks/internal/config"
	"github.com/perkshq/perks/internal/database"
	"github.com/perkshq/perks/internal/dbtest"
	"github.com/perkshq/perks/internal/demo"
	"github.com/perkshq/perks/internal/httpserver"
	"github.com/perkshq/perks/internal/keyring"
)

// Clock is a settable clock shared by the app and the test.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock starts at t.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now returns the current fake time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// Options tune New.
type Options struct {
	// Env overrides configuration variables.
	Env map[string]string
	// Workers starts River workers (off by default: most tests only need
	// the jobs inserted).
	Workers bool
	// WallClock uses the real clock instead of a fake one (for tests
	// against external tools that sign with the current time).
	WallClock bool
	// Resolver answers DNS lookups of allowed-origin host names (nil: no
	// host name resolves), so tests never use real DNS.
	Resolver auth.Resolver
	// TracerProvider turns tracing on (app.WithTracerProvider); nil: off.
	TracerProvider trace.TracerProvider
}

// StaticResolver resolves host names from a map.
type StaticResolver map[string][]netip.Addr

// LookupNetIP implements auth.Resolver.
func (r StaticResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := r[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// Env is a running application.
type Env struct {
	T       testing.TB
	App     *app.App
	DB      *database.DB
	DBURL   string
	Server  *httptest.Server
	Clock   *Clock
	Logs    *SyncBuffer
	Secrets string
	Acme    *demo.Result
	Globex  *demo.Result

	// MasterKey is the keyring's master key: PERKS_MASTER_KEY (base64) for
	// a perks command run against DBURL.
	MasterKey []byte

	// sigs is shared with the Env's replicas (one replay cache).
	sigs *signatures
}

// signatures are the timestamps used to sign each body (timestampFor).
type signatures struct {
	mu   sync.Mutex
	used map[string]bool
}

// SyncBuffer is a goroutine-safe log sink.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything logged so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// New starts an application for the test.
func New(t testing.TB, opts ...Options) *Env {
	t.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	db, url := dbtest.NewDBWithURL(t)
	secrets := t.TempDir()
	env := map[string]string{
		"PERKS_ENV":                   config.EnvDevelopment,
		"PERKS_SECRETS_DIR":           secrets,
		"PERKS_WORKERS":               strconv.FormatBool(o.Workers),
		"PERKS_WEBHOOK_ALLOW_PRIVATE": "true",
		// Unlimited unless a test sets limits: bulk tests send thousands of calls.
		"PERKS_RATE_LIMIT_PER_MINUTE":          "0",
		"PERKS_CONSUMER_RATE_LIMIT_PER_MINUTE": "0",
	}
	for k, v := range o.Env {
		env[k] = v
	}
	cfg, err := config.Load(func(k string) string { return env[k] })
	require.NoError(t, err)

	master := make([]byte, keyring.KeySize)
	_, _ = rand.Read(master)
	keys, err := keyring.New(master)
	require.NoError(t, err)

	clock := NewClock(time.Now().UTC().Truncate(time.Second))
	now := clock.Now
	if o.WallClock {
		now = time.Now
	}
	logs := &SyncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	resolver := o.Resolver
	if resolver == nil {
		resolver = StaticResolver{}
	}
	appOpts := []app.Option{app.WithClock(now), app.WithResolver(resolver)}
	if o.TracerProvider != nil {
		appOpts = append(appOpts, app.WithTracerProvider(o.TracerProvider))
	}
	a, err := app.New(cfg, log, db, keys, appOpts...)
	require.NoError(t, err)
	waitAuthCache(t, a)

	seeder := &demo.Seeder{DB: db.Bun, Partners: a.Partners, Earning: a.Earning, Content: a.Content, Catalog: a.Catalog, Merchants: a.Merchants, SecretsDir: secrets}
	results, err := seeder.Run(context.Background(), io.Discard)
	require.NoError(t, err)

	srv := httptest.NewUnstartedServer(contract(t, a.Handler))
	srv.Config.MaxHeaderBytes = httpserver.ServerMaxHeaderBytes // as app.Serve
	srv.Start()
	ctx, cancel := context.WithCancel(context.Background())
	if o.Workers {
		require.NoError(t, a.Jobs.Start(ctx))
	}
	t.Cleanup(func() {
		srv.Close()
		a.StopBackground() // the console's River UI services, if a test opened it
		if o.Workers {
			sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
			_ = a.Jobs.Stop(sctx)
			scancel()
		}
		cancel()
		if t.Failed() {
			t.Logf("application log:\n%s", tail(logs.String(), 3000))
		}
	})
	return &Env{
		T: t, App: a, DB: db, DBURL: url, Server: srv, Clock: clock, Logs: logs, Secrets: secrets,
		Acme: &results[0], Globex: &results[1], MasterKey: master, sigs: &signatures{used: map[string]bool{}},
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// Now is the app's current time.
func (e *Env) Now() time.Time { return e.App.Now() }

// HMACSecret returns a demo partner's secret by slug.
func (e *Env) HMACSecret(slug string) string {
	switch slug {
	case demo.Acme.Slug:
		return demo.Acme.HMACSecret
	case demo.Globex.Slug:
		return demo.Globex.HMACSecret
	case demo.AcmeSandbox.Slug:
		return demo.AcmeSandbox.HMACSecret
	}
	e.T.Fatalf("no secret for %s", slug)
	return ""
}

// SignV1 returns an x-signature header exactly as seed 000's openssl
// pipeline builds it. Each call uses a distinct timestamp inside the skew
// window so identical bodies signed in one test do not collide in the replay
// cache (as they would for a real client signing twice in one second).
func (e *Env) SignV1(secret string, body []byte) string {
	ts := e.timestampFor(secret, body)
	return fmt.Sprintf("t=%s,v1=%s", ts, auth.SignV1([]byte(secret), ts, body))
}

// timestampFor picks the latest second, at or before now and within the
// skew window, not yet used to sign this body with this secret.
func (e *Env) timestampFor(secret string, body []byte) string {
	e.sigs.mu.Lock()
	defer e.sigs.mu.Unlock()
	sum := sha256.Sum256(body)
	now := e.Now().Unix()
	for back := int64(0); back < 280; back++ {
		ts := strconv.FormatInt(now-back, 10)
		k := secret + "|" + ts + "|" + hex.EncodeToString(sum[:])
		if !e.sigs.used[k] {
			e.sigs.used[k] = true
			return ts
		}
	}
	e.T.Fatalf("more than 280 identical signed bodies within the skew window")
	return ""
}

// Do sends a request and returns the response with its body read.
func (e *Env) Do(req *http.Request) *Response {
	e.T.Helper()
	res, err := e.Server.Client().Do(req)
	require.NoError(e.T, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(e.T, err)
	return &Response{Response: res, Body: b}
}

// Response is a response with its body.
type Response struct {
	*http.Response
	Body []byte
}

// JSON decodes the body into a map.
func (r *Response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.Body, &m), "body: %s", r.Body)
	return m
}

// Code returns the problem code of an error response, or "".
func (r *Response) Code() string {
	var p struct{ Code string }
	_ = json.Unmarshal(r.Body, &p)
	return p.Code
}

// Partner sends a request signed for the partner with its HMAC secret.
func (e *Env) Partner(slug, method, path string, body []byte, headers ...map[string]string) *Response {
	e.T.Helper()
	req, err := http.NewRequest(method, e.Server.URL+path, bytes.NewReader(body))
	require.NoError(e.T, err)
	if len(body) > 0 {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("X-Partner-Slug", slug)
	req.Header.Set("X-Signature", e.SignV1(e.HMACSecret(slug), body))
	for _, h := range headers {
		for k, v := range h {
			req.Header.Set(k, v)
		}
	}
	return e.Do(req)
}

// PartnerJSON marshals v and sends it signed.
func (e *Env) PartnerJSON(slug, method, path string, v any, headers ...map[string]string) *Response {
	e.T.Helper()
	b, err := json.Marshal(v)
	require.NoError(e.T, err)
	return e.Partner(slug, method, path, b, headers...)
}

// PrivateKey loads a demo partner's RSA private key from the secrets dir.
func (e *Env) PrivateKey(slug string) *rsa.PrivateKey {
	e.T.Helper()
	b, err := os.ReadFile(filepath.Join(e.Secrets, slug+".private.pem"))
	require.NoError(e.T, err)
	k, err := demo.ParsePrivateKey(b)
	require.NoError(e.T, err)
	return k.(*rsa.PrivateKey)
}

// MintRS256 signs claims with header {"alg":"RS256"} (plus extra header
// fields), byte for byte like jose's SignJWT in seed 000's mint script.
func MintRS256(t testing.TB, key *rsa.PrivateKey, header map[string]any, claims map[string]any) string {
	t.Helper()
	h := map[string]any{"alg": "RS256"}
	for k, v := range header {
		h[k] = v
	}
	return SignJWT(t, h, claims, func(input []byte) []byte {
		sig, err := signRS256(key, input)
		require.NoError(t, err)
		return sig
	})
}

// SignJWT assembles a compact JWS with an arbitrary header (so tests can
// forge alg=none, wrong kids and the like) and a signing function.
func SignJWT(t testing.TB, header, claims map[string]any, sign func([]byte) []byte) string {
	t.Helper()
	hb, err := json.Marshal(header)
	require.NoError(t, err)
	cb, err := json.Marshal(claims)
	require.NoError(t, err)
	input := base64.RawURLEncoding.EncodeToString(hb) + "." + base64.RawURLEncoding.EncodeToString(cb)
	var sig []byte
	if sign != nil {
		sig = sign([]byte(input))
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// Token mints a seed-000 style consumer token for a demo partner.
func (e *Env) Token(slug, sub string, extra map[string]any) string {
	e.T.Helper()
	iss := demo.Acme.Issuer
	if slug == demo.Globex.Slug {
		iss = demo.Globex.Issuer
	}
	now := e.Now()
	claims := map[string]any{"iss": iss, "sub": sub, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	for k, v := range extra {
		if v == nil {
			delete(claims, k)
			continue
		}
		claims[k] = v
	}
	return MintRS256(e.T, e.PrivateKey(slug), nil, claims)
}

// Consumer sends a request with a bearer token.
func (e *Env) Consumer(token, method, path string, body []byte) *Response {
	e.T.Helper()
	req, err := http.NewRequest(method, e.Server.URL+path, bytes.NewReader(body))
	require.NoError(e.T, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if len(body) > 0 {
		req.Header.Set("Content-Type", "application/json")
	}
	return e.Do(req)
}

// GraphQLResult is a decoded GraphQL response.
type GraphQLResult struct {
	Data   json.RawMessage `json:"data"`
	Errors []struct {
		Message    string         `json:"message"`
		Path       []any          `json:"path"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
	Status int `json:"-"`
}

// ErrorCode returns the first error's extensions.code, or "".
func (g *GraphQLResult) ErrorCode() string {
	if len(g.Errors) == 0 {
		return ""
	}
	c, _ := g.Errors[0].Extensions["code"].(string)
	return c
}

// GraphQL posts a query with a token ("" for none).
func (e *Env) GraphQL(token, query string, vars map[string]any) *GraphQLResult {
	e.T.Helper()
	b, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	require.NoError(e.T, err)
	res := e.Consumer(token, http.MethodPost, "/graphql", b)
	var out GraphQLResult
	require.NoError(e.T, json.Unmarshal(res.Body, &out), "graphql body: %s", res.Body)
	out.Status = res.StatusCode
	return &out
}

// WaitExportable waits until every row written so far is below the export
// watermark. Transaction ids are cluster-wide, so a long transaction in any
// database of the test cluster (another test's) holds the watermark back:
// the export then defers changes (it never loses them), and a test that
// expects them in the next export must wait for the watermark first.
func (e *Env) WaitExportable() {
	e.T.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var ok bool
		err := e.DB.Bun.NewRaw(`SELECT pg_snapshot_xmin(pg_current_snapshot()) > coalesce(greatest(
			(SELECT xid FROM users ORDER BY xid DESC LIMIT 1),
			(SELECT xid FROM ledger_entries ORDER BY xid DESC LIMIT 1),
			(SELECT xid FROM vouchers ORDER BY xid DESC LIMIT 1),
			(SELECT xid FROM user_tiers ORDER BY xid DESC LIMIT 1)), '0'::xid8)`).Scan(context.Background(), &ok)
		require.NoError(e.T, err)
		if ok {
			return
		}
		if time.Now().After(deadline) {
			e.T.Fatalf("export watermark did not pass the test's writes within 30 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitAuthCache waits until the app's partner cache listens, so that a
// test's requests meet the cache as a running server's do (it serves
// nothing before).
func waitAuthCache(t testing.TB, a *app.App) {
	t.Helper()
	require.Eventually(t, a.Partners.Cache.Live, 10*time.Second, time.Millisecond, "the partner cache's listener listens")
}
