package guides

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// marker separates the outputs of consecutive run blocks in the session's
// standard output.
const marker = "@@perks-guide-block-done@@"

// Options configure Run.
type Options struct {
	// Dir is the working directory (the guide's files are written there).
	Dir string
	// Env is added to the session's environment (PATH and HOME come from
	// the test's own environment).
	Env map[string]string
	// Timeout bounds the whole session (default one minute).
	Timeout time.Duration
}

// Result is what a guide's session printed.
type Result struct {
	// Outputs holds the standard output of each run block, in order.
	Outputs []string
	// Stderr is the session's standard error.
	Stderr string
}

// Run writes the guide's files to o.Dir and runs its run blocks in order in
// one `bash` session with `set -euo pipefail`, so the first failing command
// stops the guide. Every run block followed by an output block must print
// that output (Match). The error names the guide's line of the block that
// failed. Processes a block leaves in the background are killed at the end.
func Run(ctx context.Context, doc string, o Options) (*Result, error) {
	blocks, err := Parse(doc)
	if err != nil {
		return nil, err
	}
	var script strings.Builder
	script.WriteString("set -euo pipefail\n")
	var runs []Block
	expect := map[int]Block{} // index in runs -> its output block
	for i, b := range blocks {
		switch {
		case b.File != "":
			if err := os.WriteFile(filepath.Join(o.Dir, b.File), []byte(b.Body), 0o600); err != nil {
				return nil, err
			}
		case b.Run:
			runs = append(runs, b)
			script.WriteString(b.Body)
			fmt.Fprintf(&script, "\nprintf '\\n%s\\n'\n", marker)
		case b.Output:
			if i == 0 || !blocks[i-1].Run {
				return nil, fmt.Errorf("line %d: an output block must follow a run block", b.Line)
			}
			expect[len(runs)-1] = b
		}
	}
	if len(runs) == 0 {
		return nil, errors.New("the guide has no run block")
	}
	timeout := o.Timeout
	if timeout == 0 {
		timeout = time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script.String())
	cmd.Dir = o.Dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + o.Dir, "LANG=C.UTF-8", "NO_COLOR=1"}
	for k, v := range o.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	// Own process group, so that servers a block starts in the background
	// die with the session.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// Files rather than pipes: a server a block leaves in the background
	// keeps its copy of stdout open, and Wait must not wait for it.
	stdout, err := os.CreateTemp("", "guide-stdout-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(stdout.Name())
	defer stdout.Close()
	stderr, err := os.CreateTemp("", "guide-stderr-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(stderr.Name())
	defer stderr.Close()
	cmd.Stdout, cmd.Stderr = stdout, stderr
	runErr := cmd.Run()
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	outBytes, err := os.ReadFile(stdout.Name())
	if err != nil {
		return nil, err
	}
	errBytes, err := os.ReadFile(stderr.Name())
	if err != nil {
		return nil, err
	}
	parts := strings.Split(string(outBytes), "\n"+marker+"\n")
	res := &Result{Outputs: parts[:len(parts)-1], Stderr: string(errBytes)}
	if runErr != nil {
		failed := runs[min(len(res.Outputs), len(runs)-1)]
		return res, fmt.Errorf("the run block of line %d failed: %v\nits output:\n%s\nstderr:\n%s",
			failed.Line, runErr, tail(parts[len(parts)-1], 3000), tail(res.Stderr, 3000))
	}
	if len(res.Outputs) != len(runs) {
		return res, fmt.Errorf("%d of %d run blocks finished", len(res.Outputs), len(runs))
	}
	for i, want := range expect {
		if !Match(want.Body, res.Outputs[i]) {
			return res, fmt.Errorf("the run block of line %d printed:\n%s\nbut the guide says (line %d):\n%s",
				runs[i].Line, strings.TrimSpace(res.Outputs[i]), want.Line, strings.TrimSpace(want.Body))
		}
	}
	return res, nil
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
