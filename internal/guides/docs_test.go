package guides_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/guides"
	"github.com/perkshq/perks/internal/partner"
)

// root is the repository's root directory.
func root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// guideTests names the test that runs each guide; TestEveryGuideIsRun
// checks that no guide under docs/migrate or docs/quickstart is missing.
var guideTests = map[string]string{
	"docs/migrate/seed-000.md":            "TestMigrateSeed000",
	"docs/migrate/seed-001.md":            "TestMigrateSeed001",
	"docs/migrate/seed-002.md":            "TestMigrateSeed002",
	"docs/migrate/seed-003.md":            "TestMigrateSeed003",
	"docs/migrate/seed-004.md":            "TestMigrateSeed004",
	"docs/quickstart/consumer-apollo.md":  "TestQuickstartConsumerApollo",
	"docs/quickstart/webhook-receiver.md": "TestQuickstartWebhookReceiver",
}

// raceEnabled is set when the test binary is built with -race, so the perks
// command is built the same way and reuses the test's compiled packages.
var raceEnabled bool

// perksCLI is the perks command, built once per test binary for the guides
// that run operator commands (perks key add, perks merchant create, ...).
var perksCLI struct {
	once sync.Once
	dir  string
	err  error
}

// TestMain removes the perks command built for the guides.
func TestMain(m *testing.M) {
	code := m.Run()
	if perksCLI.dir != "" {
		_ = os.RemoveAll(perksCLI.dir)
	}
	os.Exit(code)
}

// buildPerks builds cmd/perks and returns the directory holding it.
func buildPerks(t *testing.T) string {
	t.Helper()
	perksCLI.once.Do(func() {
		dir, err := os.MkdirTemp("", "perks-guides-bin-")
		if err != nil {
			perksCLI.err = err
			return
		}
		perksCLI.dir = dir
		args := []string{"build", "-o", filepath.Join(dir, "perks")}
		if raceEnabled {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, "./cmd/perks")...)
		cmd.Dir = root()
		if out, err := cmd.CombinedOutput(); err != nil {
			perksCLI.err = fmt.Errorf("go build ./cmd/perks: %v\n%s", err, out)
		}
	})
	require.NoError(t, perksCLI.err)
	return perksCLI.dir
}

// usesCLI matches a call of the perks command in a run block (at a line's
// start, after a space, or in $(...), a pipe or a list).
var usesCLI = regexp.MustCompile(`(^|[\s(;&|])perks\s`)

// runGuide runs the guide at path (relative to the repository root) against
// env's server, in a fresh directory holding the demo secrets as .secrets/
// (as under `make run`) and the pinned npm packages of tools/guides. vars
// are the guide's documented inputs; PERKS_URL is the server's URL. Guides
// that call node skip when node is absent; with node but without the
// packages they fail (scripts/install-deps.sh installs them).
func runGuide(t *testing.T, env *apptest.Env, path string, vars map[string]string) *guides.Result {
	t.Helper()
	return runGuideWith(t, env, path, "guides", vars)
}

// runGuideWith is runGuide with the npm packages of tools/<tools>.
func runGuideWith(t *testing.T, env *apptest.Env, path, tools string, vars map[string]string) *guides.Result {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join(root(), path))
	require.NoError(t, err)
	for _, tool := range []string{"bash", "curl", "openssl", "xxd", "jq"} {
		if _, err := exec.LookPath(tool); err != nil && (tool == "bash" || strings.Contains(string(doc), tool+" ")) {
			t.Fatalf("%s uses %s, which is not installed (scripts/install-deps.sh installs it)", path, tool)
		}
	}
	dir := t.TempDir()
	if needsNode(t, string(doc)) {
		if _, err := exec.LookPath("node"); err != nil {
			t.Skipf("%s runs node, which is not installed (scripts/install-deps.sh installs it)", path)
		}
		mods := filepath.Join(root(), "tools", tools, "node_modules")
		if _, err := os.Stat(filepath.Join(mods, ".package-lock.json")); err != nil {
			t.Fatalf("the guides' npm packages are not installed in %s: run scripts/install-deps.sh (npm ci there)", filepath.Dir(mods))
		}
		require.NoError(t, os.Symlink(mods, filepath.Join(dir, "node_modules")))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "package.json"), []byte(`{"type": "module"}`), 0o600))
	}
	require.NoError(t, os.Symlink(env.Secrets, filepath.Join(dir, ".secrets")))
	all := map[string]string{"PERKS_URL": env.Server.URL}
	if runsCLI(t, string(doc)) {
		// The operator's environment: the deployment's database and master key.
		all["PATH"] = buildPerks(t) + string(os.PathListSeparator) + os.Getenv("PATH")
		all["DATABASE_URL"] = env.DBURL
		all["PERKS_MASTER_KEY"] = base64.StdEncoding.EncodeToString(env.MasterKey)
		all["PERKS_SECRETS_DIR"] = env.Secrets
	}
	for k, v := range vars {
		all[k] = v
	}
	res, err := guides.Run(context.Background(), string(doc), guides.Options{Dir: dir, Env: all, Timeout: 2 * time.Minute})
	require.NoError(t, err, "%s", path)
	return res
}

// runsCLI reports whether a guide's run blocks call the perks command.
func runsCLI(t *testing.T, doc string) bool {
	blocks, err := guides.Parse(doc)
	require.NoError(t, err)
	for _, b := range blocks {
		if b.Run && usesCLI.MatchString(b.Body) {
			return true
		}
	}
	return false
}

// needsNode reports whether a guide's run blocks or files use node.
func needsNode(t *testing.T, doc string) bool {
	blocks, err := guides.Parse(doc)
	require.NoError(t, err)
	for _, b := range blocks {
		if (b.Run && strings.Contains(b.Body, "node ")) || strings.HasSuffix(b.File, ".mjs") || strings.HasSuffix(b.File, ".js") {
			return true
		}
	}
	return false
}

// TestEveryGuideIsRun: every guide of docs/migrate and docs/quickstart has a
// test that runs it, every guide has run blocks, and the README links each.
func TestEveryGuideIsRun(t *testing.T) {
	t.Parallel()
	for _, dir := range []string{"docs/migrate", "docs/quickstart"} {
		entries, err := os.ReadDir(filepath.Join(root(), dir))
		require.NoError(t, err)
		for _, e := range entries {
			if path := dir + "/" + e.Name(); strings.HasSuffix(path, ".md") && e.Name() != "README.md" {
				require.Contains(t, guideTests, path, "guideTests names the test that runs %s", path)
			}
		}
	}
	readme, err := os.ReadFile(filepath.Join(root(), "README.md"))
	require.NoError(t, err)
	var paths []string
	for path := range guideTests {
		paths = append(paths, path)
	}
	sort.Strings(paths)
	for _, path := range paths {
		doc, err := os.ReadFile(filepath.Join(root(), path))
		require.NoError(t, err)
		blocks, err := guides.Parse(string(doc))
		require.NoError(t, err, path)
		runs := 0
		for _, b := range blocks {
			if b.Run {
				runs++
			}
		}
		require.Positive(t, runs, "%s has run blocks", path)
		require.Regexp(t, `\]\(`+regexp.QuoteMeta(path)+`[)#]`, string(readme), "the README links %s", path)
	}
}

// TestMigrateSeed000 runs docs/migrate/seed-000.md: provision, mint with
// jose, /me, the webview, a webhook endpoint, anonymise.
func TestMigrateSeed000(t *testing.T) {
	t.Parallel()
	env := apptest.New(t, apptest.Options{WallClock: true})
	runGuide(t, env, "docs/migrate/seed-000.md", nil)
	require.Equal(t, 1, env.Count("users", "partner_id = ? AND anonymised_at IS NOT NULL", env.Acme.Partner.ID))
}

// TestMigrateSeed001 runs docs/migrate/seed-001.md: seed 001's request JWT
// (auth/token, buffer/store, user/info, ranking, infos, multidelete) and
// its front-end paths over GraphQL with a partner-minted consumer token.
func TestMigrateSeed001(t *testing.T) {
	t.Parallel()
	env := apptest.New(t, apptest.Options{WallClock: true})
	const secret = "guide-seed-001-request-jwt-secret-0123456789"
	_, err := env.App.Partners.AddSharedSecret(context.Background(), env.DB.Bun, env.Acme.Partner.ID, partner.KindRequestJWT, "seed 001 guide", []byte(secret))
	require.NoError(t, err)
	runGuide(t, env, "docs/migrate/seed-001.md", map[string]string{
		"PERKS_PARTNER_ID":         env.Acme.Partner.ID.String(),
		"PERKS_REQUEST_JWT_SECRET": secret,
	})
	require.Equal(t, 1, env.Count("bulk_jobs", "partner_id = ? AND kind = 'multidelete'", env.Acme.Partner.ID))
}

// TestMigrateSeed002 runs docs/migrate/seed-002.md: seed 002's key pair
// uploaded with perks key add, a kid-only widget token, the user created on
// first use, and a rotation that retires the old key.
func TestMigrateSeed002(t *testing.T) {
	t.Parallel()
	env := apptest.New(t, apptest.Options{WallClock: true})
	runGuide(t, env, "docs/migrate/seed-002.md", nil)
	require.Equal(t, 1, env.Count("consumer_keys", "partner_id = ? AND kid = 'primary' AND NOT enabled", env.Acme.Partner.ID))
}

// TestMigrateSeed003 runs docs/migrate/seed-003.md: seed 003's HS256 user
// JWT with a user object under the account's kid, in X-SaaSquatch-User-Token,
// the server-side upsert with a referral code, a friend applying it, and a
// token without exp once the key allows it.
func TestMigrateSeed003(t *testing.T) {
	t.Parallel()
	env := apptest.New(t, apptest.Options{WallClock: true})
	runGuide(t, env, "docs/migrate/seed-003.md", nil)
	require.Equal(t, 1, env.Count("users", "partner_id = ? AND first_name = 'John' AND last_name = 'Doe' AND locale = 'en-US'", env.Acme.Partner.ID))
}

// TestMigrateSeed004 runs docs/migrate/seed-004.md: an Ed25519 API access
// record made with perks partner credential create, signed partner calls,
// allowed origins, and a merchant redemption with the customer's OTP.
func TestMigrateSeed004(t *testing.T) {
	t.Parallel()
	env := apptest.New(t, apptest.Options{WallClock: true})
	runGuide(t, env, "docs/migrate/seed-004.md", nil)
	require.Equal(t, 1, env.Count("vouchers", "partner_id = ? AND redeemed_at IS NOT NULL", env.Acme.Partner.ID))
}

// TestQuickstartConsumerApollo runs docs/quickstart/consumer-apollo.md: a
// token minted with jose, points from the back end, then Apollo Client
// reads me and the catalog and claims a gift.
func TestQuickstartConsumerApollo(t *testing.T) {
	t.Parallel()
	env := apptest.New(t, apptest.Options{WallClock: true})
	runGuide(t, env, "docs/quickstart/consumer-apollo.md", nil)
	require.Equal(t, 1, env.Count("vouchers", "partner_id = ?", env.Acme.Partner.ID))
}

// TestQuickstartWebhookReceiver runs docs/quickstart/webhook-receiver.md: a
// node receiver verifying real deliveries with the standardwebhooks
// library, registered through the API, fed by River workers.
func TestQuickstartWebhookReceiver(t *testing.T) {
	t.Parallel()
	env := apptest.New(t, apptest.Options{WallClock: true, Workers: true})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	require.NoError(t, l.Close())
	res := runGuide(t, env, "docs/quickstart/webhook-receiver.md", map[string]string{"PORT": port})
	require.Contains(t, res.Outputs[len(res.Outputs)-2], "verified points.earned for usr_hook_1")
}

// TestQuickstartPartnerBackEnd runs the quickstart of docs/openapi.md as
// written: openapi-typescript against the served document, the guide's
// tsc command line, then the compiled quickstart.
func TestQuickstartPartnerBackEnd(t *testing.T) {
	t.Parallel()
	env := apptest.New(t, apptest.Options{WallClock: true})
	runGuideWith(t, env, "docs/openapi.md", "openapi", nil)
	require.Equal(t, 1, env.Count("users", "partner_id = ?", env.Acme.Partner.ID))
}
