package scale_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/stretchr/testify/require"
)

// startPgBouncer runs Debian's pgbouncer in transaction pooling mode in
// front of primary and returns its URL. PgBouncer refuses to run as root,
// so under root it runs as postgres.
func startPgBouncer(t *testing.T, primary *cluster, dir string) string {
	t.Helper()
	bin, err := exec.LookPath("pgbouncer")
	if err != nil {
		bin = "/usr/sbin/pgbouncer"
	}
	_, err = os.Stat(bin)
	require.NoError(t, err, "pgbouncer not found: scripts/install-deps.sh installs it")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	port := freePort(t)
	ini := fmt.Sprintf(`[databases]
perks = host=127.0.0.1 port=%d dbname=perks
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = trust
auth_file = %s
admin_users = postgres
pool_mode = transaction
max_client_conn = 1000
default_pool_size = 20
stats_period = 1
logfile = %s
pidfile = %s
`, primary.port, port, filepath.Join(dir, "userlist.txt"), filepath.Join(dir, "pgbouncer.log"), filepath.Join(dir, "pgbouncer.pid"))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "pgbouncer.ini"), []byte(ini), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "userlist.txt"), []byte(`"postgres" ""`+"\n"), 0o644))
	var args []string
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		require.NoError(t, err)
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		require.NoError(t, os.Chown(dir, uid, gid))
		args = []string{"runuser", "-u", "postgres", "--"}
	}
	args = append(args, bin, filepath.Join(dir, "pgbouncer.ini"))
	cmd := exec.Command(args[0], args[1:]...)
	out, err := os.Create(filepath.Join(dir, "stdout.log"))
	require.NoError(t, err)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
		_ = cmd.Wait()
		out.Close()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "pgbouncer.log"))
			t.Logf("pgbouncer log:\n%s", tail(string(b), 3000))
		}
	})
	url := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/perks?sslmode=disable", port)
	require.Eventually(t, func() bool {
		conn, err := pgx.Connect(context.Background(), url)
		if err != nil {
			return false
		}
		conn.Close(context.Background())
		return true
	}, 10*time.Second, 50*time.Millisecond)
	return url
}

// TestBehindPgBouncer runs two replicas whose pools go through PgBouncer
// in transaction pooling mode (PERKS_DATABASE_POOLER=transaction): one
// with a direct connection for River (PERKS_DIRECT_DATABASE_URL), one
// polling for jobs without it. The mixed load keeps every guarantee, and
// PgBouncer carried the transactions.
func TestBehindPgBouncer(t *testing.T) {
	enabled(t)
	in := install(t, false)
	// lock_timeout is a session setting the pooled connections cannot
	// send; the role (or database) carries it instead.
	rows := query(t, in.primary.url, `ALTER DATABASE perks SET lock_timeout = '5s'`)
	rows.Close()
	bouncer := startPgBouncer(t, in.primary, filepath.Join(in.dir, "pgbouncer"))
	env := append(perksEnv(in.dir, bouncer), "PERKS_DATABASE_POOLER=transaction")
	withDirect := startReplica(t, in.bin, in.dir, append(env, "PERKS_DIRECT_DATABASE_URL="+in.primary.url), "pooled-direct")
	pollOnly := startReplica(t, in.bin, in.dir, env, "pooled-poll")
	lb := balancer(t, []*replica{withDirect, pollOnly})

	l := startLoad(t, in, acme(lb.URL))
	l.finish(t, 8*time.Second)

	// The transactions went through PgBouncer (its totals are updated
	// every stats_period).
	time.Sleep(1500 * time.Millisecond)
	conn, err := pgx.Connect(context.Background(), bouncer[:len(bouncer)-len("perks?sslmode=disable")]+"pgbouncer?sslmode=disable&default_query_exec_mode=simple_protocol")
	require.NoError(t, err)
	defer conn.Close(context.Background())
	r, err := conn.Query(context.Background(), "SHOW STATS")
	require.NoError(t, err)
	var xacts int64
	for r.Next() {
		vals, err := r.Values()
		require.NoError(t, err)
		if fmt.Sprint(vals[0]) == "perks" {
			n, ok := vals[1].(pgtype.Numeric)
			require.True(t, ok, "total_xact_count is %T", vals[1])
			xacts = n.Int.Int64()
		}
	}
	require.NoError(t, r.Err())
	t.Logf("pgbouncer: %d transactions pooled", xacts)
	// At least one transaction per user the load created (the totals lag by
	// up to a stats period, so no tighter bound).
	require.Greater(t, xacts, int64(loadUsers))
}
