package graph_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSchemaCheck runs the graphql-inspector check of `make test`
// (tools/graphql/check.mjs) on the committed files and on edited copies: it
// passes on the schema as it is, fails on an undeclared breaking change
// naming it, passes once the change is declared, and fails on a
// declaration that matches nothing. Without node it is skipped, saying so;
// with node but without the pinned tools it fails.
func TestSchemaCheck(t *testing.T) {
	t.Parallel()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: the GraphQL schema check was NOT tested (install node, then scripts/install-deps.sh)")
	}
	_, err = os.Stat("../tools/graphql/node_modules/@graphql-inspector/core")
	require.NoError(t, err, "tools/graphql is not installed: run scripts/install-deps.sh")

	current, err := os.ReadFile("../schema.graphqls")
	require.NoError(t, err)
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(text), 0o600))
		return p
	}
	check := func(schema, declared string) (string, bool) {
		cmd := exec.Command(node, "../tools/graphql/check.mjs", "schema.released.graphqls", schema, declared)
		out, err := cmd.CombinedOutput()
		return string(out), err == nil
	}

	out, ok := check("../schema.graphqls", "schema.breaking.txt")
	require.True(t, ok, "the committed schema has an undeclared breaking change:\n%s", out)

	// Rename a field every client reads: hasNextPage.
	broken := strings.Replace(string(current), "  hasNextPage: Boolean!\n", "  hasMore: Boolean!\n", 1)
	require.NotEqual(t, string(current), broken)
	brokenPath := write("broken.graphqls", broken)
	out, ok = check(brokenPath, "schema.breaking.txt")
	require.False(t, ok, out)
	require.Contains(t, out, "BREAKING: FIELD_REMOVED PageInfo.hasNextPage")

	declared := write("declared.txt", "# test\nFIELD_REMOVED PageInfo.hasNextPage  renamed hasMore\n")
	out, ok = check(brokenPath, declared)
	require.True(t, ok, out)
	require.Contains(t, out, "declared breaking change: FIELD_REMOVED PageInfo.hasNextPage")

	out, ok = check("../schema.graphqls", declared)
	require.False(t, ok, out)
	require.Contains(t, out, "declared but not found: FIELD_REMOVED PageInfo.hasNextPage")

	out, ok = check(brokenPath, write("bare.txt", "FIELD_REMOVED PageInfo.hasNextPage\n"))
	require.False(t, ok, "a declaration must say why:\n%s", out)
}

// TestSchemaCheckSkipsLoudlyWithoutNode: scripts/schema-check.sh without
// node on the PATH exits 0 but says the schema was not checked; it never
// passes in silence.
func TestSchemaCheckSkipsLoudlyWithoutNode(t *testing.T) {
	t.Parallel()
	bash, err := exec.LookPath("bash")
	require.NoError(t, err)
	bin := t.TempDir()
	dirname, err := exec.LookPath("dirname")
	require.NoError(t, err)
	require.NoError(t, os.Symlink(dirname, filepath.Join(bin, "dirname")))
	cmd := exec.Command(bash, "../scripts/schema-check.sh")
	cmd.Env = []string{"PATH=" + bin}
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "SKIPPED: node is not installed, so the GraphQL schema was NOT checked")
}
