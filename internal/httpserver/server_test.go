package httpserver_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
)

func TestOpsEndpoints(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	get := func(path string) *apptest.Response {
		req, _ := http.NewRequest(http.MethodGet, env.Server.URL+path, nil)
		return env.Do(req)
	}
	require.Equal(t, http.StatusOK, get("/healthz").StatusCode)
	ready := get("/readyz")
	require.Equal(t, http.StatusOK, ready.StatusCode, "%s", ready.Body)

	env.Consumer("", http.MethodGet, "/me", nil) // one request to count
	tok := env.Token("acme", "metrics-user", nil)
	require.Empty(t, env.GraphQL(tok, `query Profile { me { id } }`, nil).Errors)
	require.Equal(t, "UNAUTHENTICATED", env.GraphQL("", `{ me { id } }`, nil).ErrorCode())
	m := get("/metrics")
	require.Equal(t, http.StatusOK, m.StatusCode)
	for _, want := range []string{
		`perks_http_requests_total{method="GET",route="GET /me",status="401"} 1`,
		"perks_http_request_duration_seconds_bucket",
		"perks_db_pool_max_conns",
		"perks_db_pool_acquired_conns",
		`perks_graphql_operations_total{operation="Profile",outcome="ok",type="query"} 1`,
		`perks_graphql_operations_total{operation="anonymous",outcome="UNAUTHENTICATED",type="query"} 1`,
		`perks_graphql_operation_duration_seconds_count{operation="Profile",type="query"} 1`,
		"go_goroutines",
	} {
		require.Contains(t, string(m.Body), want)
	}
	require.NotEmpty(t, ready.Header.Get("X-Request-Id"))

	// A pending migration makes the replica unready.
	_, err := env.DB.Bun.NewRaw("DELETE FROM bun_migrations WHERE name = (SELECT max(name) FROM bun_migrations)").Exec(context.Background())
	require.NoError(t, err)
	ready = get("/readyz")
	require.Equal(t, http.StatusServiceUnavailable, ready.StatusCode)
	require.Contains(t, string(ready.Body), "migrations pending")
}

func TestRequestIDIsEchoedOrMinted(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	req, _ := http.NewRequest(http.MethodGet, env.Server.URL+"/healthz", nil)
	req.Header.Set("X-Request-Id", "abc-123")
	require.Equal(t, "abc-123", env.Do(req).Header.Get("X-Request-Id"))
	req, _ = http.NewRequest(http.MethodGet, env.Server.URL+"/healthz", nil)
	req.Header.Set("X-Request-Id", "bad id with spaces")
	got := env.Do(req).Header.Get("X-Request-Id")
	require.Regexp(t, `^[0-9a-f]{24}$`, got)
}

func TestGraphQLLimits(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	tok := env.Token("acme", "gql-user", nil)

	res := env.GraphQL("", `{ me { id } }`, nil)
	require.Equal(t, "UNAUTHENTICATED", res.ErrorCode())

	deep := "{ me { partner { id } } }"
	require.Empty(t, env.GraphQL(tok, deep, nil).Errors)

	// Introspection has its own depth limit (20, graph.DefaultLimits); __type(name) { fields { type { ofType × 20 } } }.
	tooDeep := `{ __type(name: "User") { fields { type { ` + strings.Repeat("ofType { ", 20) + "name" + strings.Repeat(" }", 20) + ` } } } }`
	res = env.GraphQL(tok, tooDeep, nil)
	require.Equal(t, "DEPTH_LIMIT_EXCEEDED", res.ErrorCode(), "%+v", res.Errors)

	wide := "{ " + strings.Repeat("a: me { id } ", 1) + strings.Repeat("me { id partner { id name slug displayName logoPath } } ", 1) + "}"
	require.Empty(t, env.GraphQL(tok, wide, nil).Errors)
	var many strings.Builder
	many.WriteString("{")
	for i := 0; i < 400; i++ {
		many.WriteString(" a" + string(rune('a'+i%26)) + strings.Repeat("x", i/26) + ": me { id partner { id } }")
	}
	many.WriteString(" }")
	res = env.GraphQL(tok, many.String(), nil)
	require.Equal(t, "QUERY_TOO_LARGE", res.ErrorCode(), "%+v", res.Errors) // 400 aliases
	require.Empty(t, env.GraphQL(tok, "{ catalog(first: 100) { edges { node { id } } } }", nil).Errors)
	// Ten pages of 100 gifts cost 10 × (1 + 100 × 2) > 1000 (docs/graphql.md).
	var pages strings.Builder
	for i := 0; i < 10; i++ {
		pages.WriteString(" c" + string(rune('a'+i)) + ": catalog(first: 100) { edges { node { id } } }")
	}
	res = env.GraphQL(tok, "{"+pages.String()+" }", nil)
	require.Equal(t, "COMPLEXITY_LIMIT_EXCEEDED", res.ErrorCode(), "%+v", res.Errors)

	res = env.GraphQL(tok, `{ me { nope } }`, nil)
	require.Equal(t, "GRAPHQL_VALIDATION_FAILED", res.ErrorCode())

	res = env.GraphQL(tok, `{ __schema { queryType { name } } }`, nil)
	require.Empty(t, res.Errors, "introspection is on in development")

	big := bytes.Repeat([]byte(" "), 2<<20)
	r := env.Consumer(tok, http.MethodPost, "/graphql", append([]byte(`{"query":"{ me { id } }"}`), big...))
	require.Equal(t, http.StatusRequestEntityTooLarge, r.StatusCode)
	require.Equal(t, "PAYLOAD_TOO_LARGE", r.Code())

	req, _ := http.NewRequest(http.MethodGet, env.Server.URL+"/graphql", nil)
	require.Equal(t, http.StatusOK, env.Do(req).StatusCode, "GraphiQL in development")
}

func TestProductionHidesDevelopmentTools(t *testing.T) {
	t.Parallel()
	env := apptest.New(t, apptest.Options{Env: map[string]string{"PERKS_ENV": "production"}})
	tok := env.Token("acme", "prod-user", nil)
	res := env.GraphQL(tok, `{ __schema { queryType { name } } }`, nil)
	require.NotEmpty(t, res.Errors, "introspection is off in production")
	req, _ := http.NewRequest(http.MethodGet, env.Server.URL+"/graphql", nil)
	r := env.Do(req)
	require.Equal(t, http.StatusMethodNotAllowed, r.StatusCode)
	require.Equal(t, "OPTIONS, POST", r.Header.Get("Allow"), "OPTIONS: the CORS preflight")
}

// TestGracefulShutdown: cancelling Serve's context lets an in-flight request
// finish and returns cleanly.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ln := &watchedListener{Listener: inner, accepted: make(chan *watchedConn, 1024), closed: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- env.App.Serve(ctx, ln) }()
	url := "http://" + ln.Addr().String()

	require.Eventually(t, func() bool {
		res, err := http.Get(url + "/healthz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == 200
	}, 5*time.Second, 20*time.Millisecond)

	// A slow upload is in flight when shutdown starts.
	pr, pw := io.Pipe()
	resc := make(chan int, 1)
	connected := make(chan net.Addr, 1)
	go func() {
		// A connection of its own (not the health check's idle one), so
		// the test can see the server accept it.
		client := &http.Client{Transport: &http.Transport{}}
		trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) { connected <- info.Conn.LocalAddr() }}
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodPost, url+"/graphql", pr)
		req.Header.Set("Content-Type", "application/json")
		res, err := client.Do(req)
		if err != nil {
			resc <- -1
			return
		}
		res.Body.Close()
		resc <- res.StatusCode
	}()
	_, _ = pw.Write([]byte(`{"query":"{ me `))
	// Wait for the preconditions instead of sleeping on them: the
	// handler is reading the upload's body before shutdown starts (a
	// request read after it is refused), and the listener is closed
	// (shutdown is under way) before the upload completes.
	client := <-connected
	var conn *watchedConn
	for c := range ln.accepted {
		if c.RemoteAddr().String() == client.String() {
			conn = c
			break
		}
	}
	// The first read brings the headers (one small write on loopback);
	// a second read is the handler waiting for the rest of the body.
	<-conn.reads
	<-conn.reads
	cancel()
	select {
	case <-ln.closed:
	case <-time.After(15 * time.Second):
		t.Fatal("shutdown did not close the listener")
	}
	_, _ = pw.Write([]byte(`{ id } }"}`))
	pw.Close()
	require.Equal(t, 200, <-resc, "the in-flight request completed")
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(15 * time.Second):
		t.Fatal("Serve did not return")
	}
	_, err = http.Get(url + "/healthz")
	require.Error(t, err, "no longer listening")
}

// watchedListener reports the connections it accepts and when it is
// closed, so a test can wait for the server to reach a state instead of
// sleeping until it probably has.
type watchedListener struct {
	net.Listener
	accepted chan *watchedConn
	closed   chan struct{}
	once     sync.Once
}

func (l *watchedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return c, err
	}
	wc := &watchedConn{Conn: c, reads: make(chan struct{}, 64)}
	select {
	case l.accepted <- wc:
	default: // only the test's own connections matter; never block Serve
	}
	return wc, nil
}

func (l *watchedListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// watchedConn reports each Read the server starts on it.
type watchedConn struct {
	net.Conn
	reads chan struct{}
}

func (c *watchedConn) Read(b []byte) (int, error) {
	select {
	case c.reads <- struct{}{}:
	default:
	}
	return c.Conn.Read(b)
}

// TestMetricsAccess: /metrics is open in development only. Production
// serves it with the bearer token of PERKS_METRICS_TOKEN, or on the
// listener of PERKS_METRICS_ADDR (never on the public one then), or not at
// all; the queue gauges come from index probes and are always there.
func TestMetricsAccess(t *testing.T) {
	t.Parallel()
	get := func(env *apptest.Env, base, auth string) *apptest.Response {
		req, _ := http.NewRequest(http.MethodGet, base+"/metrics", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		return env.Do(req)
	}
	t.Run("production without token or listener: off", func(t *testing.T) {
		t.Parallel()
		env := apptest.New(t, apptest.Options{Env: map[string]string{"PERKS_ENV": "production"}})
		require.Equal(t, http.StatusNotFound, get(env, env.Server.URL, "").StatusCode)
	})
	t.Run("token", func(t *testing.T) {
		t.Parallel()
		env := apptest.New(t, apptest.Options{Env: map[string]string{"PERKS_ENV": "production", "PERKS_METRICS_TOKEN": "s3cret-scrape"}})
		r := get(env, env.Server.URL, "")
		require.Equal(t, http.StatusUnauthorized, r.StatusCode)
		require.Equal(t, "UNAUTHENTICATED", r.Code())
		require.NotContains(t, string(r.Body), "s3cret-scrape")
		require.Equal(t, http.StatusUnauthorized, get(env, env.Server.URL, "Bearer wrong").StatusCode)
		r = get(env, env.Server.URL, "Bearer s3cret-scrape")
		require.Equal(t, http.StatusOK, r.StatusCode)
		for _, want := range []string{`perks_river_queue_lag_seconds{queue="webhook"} 0`, `perks_river_queue_available_jobs{queue="default"} 0`} {
			require.Contains(t, string(r.Body), want)
		}
		require.NotContains(t, env.Logs.String(), "s3cret-scrape")
	})
	t.Run("listener of its own", func(t *testing.T) {
		t.Parallel()
		probe, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := probe.Addr().String()
		require.NoError(t, probe.Close())
		env := apptest.New(t, apptest.Options{Env: map[string]string{"PERKS_METRICS_ADDR": addr}})
		require.Equal(t, http.StatusNotFound, get(env, env.Server.URL, "").StatusCode, "not on the public listener, even in development")
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- env.App.Serve(ctx, ln) }()
		require.Eventually(t, func() bool {
			res, err := http.Get("http://" + addr + "/metrics")
			if err != nil {
				return false
			}
			res.Body.Close()
			return res.StatusCode == http.StatusOK
		}, 5*time.Second, 20*time.Millisecond)
		cancel()
		require.NoError(t, <-done)
	})
}
