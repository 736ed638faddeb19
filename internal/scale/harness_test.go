// Package scale_test runs Perks the way it scales out: several `perks serve`
// processes behind one address against one PostgreSQL primary, with a
// streaming standby (made by pg_basebackup) serving the lag-tolerant reads.
// The tests start their own clusters and processes, so they take a minute:
// they run under `make test-scale` (PERKS_SCALE_TEST=1), which CI runs
// after `make test`, and skip otherwise. docs/scaling.md reports what they
// measure.
package scale_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/auth"
	"github.com/perkshq/perks/internal/dbtest"
	"github.com/perkshq/perks/internal/demo"
)

// enabled skips the test unless `make test-scale` runs it.
func enabled(t *testing.T) {
	t.Helper()
	if os.Getenv("PERKS_SCALE_TEST") != "1" {
		t.Skip("scale-out test: run `make test-scale` (PERKS_SCALE_TEST=1)")
	}
}

// freePort asks the kernel for a port nobody listens on.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// root is the repository, where scripts/ and cmd/ are.
func root(t *testing.T) string {
	t.Helper()
	r, err := dbtest.RepoRoot()
	require.NoError(t, err)
	return r
}

// run runs a command, failing the test with its output.
func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s %s:\n%s", name, strings.Join(args, " "), out)
	return string(out)
}

// cluster is a PostgreSQL server of the test.
type cluster struct {
	dir  string
	port int
	url  string
}

// startPrimary initialises and starts a primary in dir with scripts/pgcluster.sh
// (which already allows replication connections from 127.0.0.1: initdb's
// trust rules).
func startPrimary(t *testing.T, dir string) *cluster {
	t.Helper()
	c := &cluster{dir: dir, port: freePort(t)}
	run(t, root(t), nil, "scripts/pgcluster.sh", "start", dir, strconv.Itoa(c.port))
	t.Cleanup(func() { _ = exec.Command(filepath.Join(root(t), "scripts/pgcluster.sh"), "stop", dir).Run() })
	c.url = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/perks?sslmode=disable", c.port)
	return c
}

// startStandby copies primary with pg_basebackup (-R writes the standby's
// connection to it) and starts it as a hot standby. hot_standby_feedback
// keeps the primary's vacuum from removing rows a long export on the
// standby still reads, which would otherwise cancel it.
func startStandby(t *testing.T, primary *cluster, dir string) *cluster {
	t.Helper()
	require.NoError(t, os.MkdirAll(dir, 0o700))
	var asPG []string
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		require.NoError(t, err)
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		require.NoError(t, os.Chown(dir, uid, gid))
		asPG = []string{"runuser", "-u", "postgres", "--"}
	}
	args := append(asPG, pgBin(t, "pg_basebackup"), "-h", "127.0.0.1", "-p", strconv.Itoa(primary.port), "-U", "postgres",
		"-D", dir, "-R", "-X", "stream", "-c", "fast")
	run(t, "/", nil, args[0], args[1:]...)
	f, err := os.OpenFile(filepath.Join(dir, "postgresql.auto.conf"), os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString("hot_standby_feedback = on\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())
	return startPrimary(t, dir) // pgcluster.sh starts it on its own port
}

// pgBin finds a PostgreSQL program on the PATH or under /usr/lib/postgresql.
func pgBin(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name)
	require.NotEmpty(t, m, "%s not found: install the Debian package postgresql", name)
	return m[len(m)-1]
}

// build compiles the perks binary once per test binary run.
func build(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "perks")
	run(t, root(t), nil, "go", "build", "-o", bin, "./cmd/perks")
	return bin
}

// replica is one `perks serve` process.
type replica struct {
	url string
	cmd *exec.Cmd
	log string
}

// perksEnv is the environment every process of the installation shares.
func perksEnv(dir, dbURL string) []string {
	return []string{
		"DATABASE_URL=" + dbURL,
		"PERKS_SECRETS_DIR=" + filepath.Join(dir, "secrets"),
		"PERKS_WEBHOOK_ALLOW_PRIVATE=true",
		"PERKS_LOG_LEVEL=warn",
	}
}

// startReplica runs `perks serve` on a free port and waits for /readyz.
func startReplica(t *testing.T, bin, dir string, env []string, name string) *replica {
	t.Helper()
	port := freePort(t)
	logPath := filepath.Join(dir, name+".log")
	lf, err := os.Create(logPath)
	require.NoError(t, err)
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(append(os.Environ(), env...), "PERKS_ADDR=127.0.0.1:"+strconv.Itoa(port))
	cmd.Stdout, cmd.Stderr = lf, lf
	require.NoError(t, cmd.Start())
	r := &replica{url: "http://127.0.0.1:" + strconv.Itoa(port), cmd: cmd, log: logPath}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
		}
		lf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("%s log:\n%s", name, tail(string(b), 4000))
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get(r.url + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return r
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logPath)
			t.Fatalf("%s not ready after 30s:\n%s", name, tail(string(b), 4000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// balancer is the "one address" in front of the replicas: round robin, so
// a client's retry lands on another replica than its first attempt.
func balancer(t *testing.T, replicas []*replica) *httptest.Server {
	t.Helper()
	targets := make([]*url.URL, len(replicas))
	for i, r := range replicas {
		u, err := url.Parse(r.url)
		require.NoError(t, err)
		targets[i] = u
	}
	var n atomic.Uint64
	proxy := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(targets[n.Add(1)%uint64(len(targets))])
	}}
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)
	return srv
}

// client signs partner requests like a partner's back end (HMAC v2: method
// and path bound, so many GETs in one second stay distinct).
type client struct {
	base   string
	slug   string
	secret []byte
	http   *http.Client
}

func newClient(base, slug, secret string) *client {
	return &client{base: base, slug: slug, secret: []byte(secret), http: &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64},
	}}
}

func acme(base string) *client   { return newClient(base, "acme", demo.Acme.HMACSecret) }
func globex(base string) *client { return newClient(base, "globex", demo.Globex.HMACSecret) }

// request builds a signed request; the same request can be sent twice (a
// client's retry) with send.
func (c *client) request(ctx context.Context, method, path string, body []byte, idem string) *http.Request {
	req, _ := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req.Header.Set("X-Partner-Slug", c.slug)
	req.Header.Set("X-Signature", "t="+ts+",v2="+auth.SignV2(c.secret, ts, method, path, body))
	if len(body) > 0 {
		req.Header.Set("Content-Type", "application/json")
	}
	if idem != "" {
		req.Header.Set("Idempotency-Key", idem)
	}
	return req
}

// send sends req (again: the body is re-read) and returns status, headers
// and body.
func (c *client) send(req *http.Request, body []byte) (int, http.Header, []byte, error) {
	r := req.Clone(req.Context())
	r.Body = io.NopCloser(bytes.NewReader(body))
	res, err := c.http.Do(r)
	if err != nil {
		return 0, nil, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, b, err
}

// query runs one statement on url.
func query(t *testing.T, dbURL, sql string, args ...any) pgx.Rows {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dbURL)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(context.Background()) })
	rows, err := conn.Query(context.Background(), sql, args...)
	require.NoError(t, err)
	return rows
}
