package openapi_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// openapiTools is tools/openapi, where scripts/install-deps.sh installs the
// pinned Node tools (npm ci). Without node on the machine the tests that
// need them skip; with node, missing tools are a failure (run the script),
// never a skip, so a CI machine cannot pass them by accident.
func openapiTools(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed (scripts/install-deps.sh installs it)")
	}
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "..", "tools", "openapi")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", ".bin", "spectral")); err != nil {
		t.Fatalf("the OpenAPI tools are not installed in %s: run scripts/install-deps.sh (npm ci there)", dir)
	}
	return dir
}

// run runs a tool of tools/openapi/node_modules/.bin and returns its
// standard output; its standard error goes to the test log on failure.
func run(t *testing.T, dir, workdir, tool string, args ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command(filepath.Join(dir, "node_modules", ".bin", tool), args...)
	cmd.Dir = workdir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = append(os.Environ(), "NO_COLOR=1", "REDOCLY_TELEMETRY=off", "REDOCLY_SUPPRESS_UPDATE_NOTICE=true", "SCARF_ANALYTICS=false")
	err := cmd.Run()
	if err != nil {
		t.Logf("%s %v: %v\nstdout:\n%s\nstderr:\n%s", tool, args, err, truncate(stdout.String(), 4000), truncate(stderr.String(), 4000))
	}
	return stdout.Bytes(), err
}

// runNode runs a compiled script with node in dir, with vars added to the
// environment, and returns its standard output.
func runNode(t *testing.T, dir string, vars map[string]string, script string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command("node", script)
	cmd.Dir = dir
	cmd.Env = os.Environ()
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		t.Logf("node %s: %v\nstdout:\n%s\nstderr:\n%s", script, err, truncate(stdout.String(), 6000), truncate(stderr.String(), 4000))
	}
	return stdout.Bytes(), err
}
