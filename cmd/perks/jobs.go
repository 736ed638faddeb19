package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/urfave/cli/v3"

	"github.com/perkshq/perks/internal/bulk"
)

const jobsDescription = `Bulk jobs are the multistores over 2,000 items and every multidelete
(POST /integrations/multistore, /integrations/multidelete); the servers'
River workers run them in chunks of 500 users.

  perks jobs list  --partner SLUG [--limit 20] [--json]
  perks jobs watch --partner SLUG [--interval 1s] [--json] ID

watch polls the job until it finishes and draws a progress bar (one
line per change when stdout is not a terminal; with --json one JSON
object per change). It exits 0 when the job completed, 1 when it failed.`

func jobsCommand() *cli.Command {
	return &cli.Command{
		Name:        "jobs",
		Usage:       "bulk jobs: list them, watch one's progress",
		Description: jobsDescription,
		Commands: []*cli.Command{
			{
				Name: "list", Usage: "the partner's most recent bulk jobs, newest first",
				Flags: []cli.Flag{partnerFlag(), jsonFlag(),
					&cli.IntFlag{Name: "limit", Value: 20, Usage: "jobs to show (1-1000)"}},
				Action: jobsList,
			},
			{
				Name: "watch", Usage: "follow a job with a progress bar until it finishes", ArgsUsage: "ID",
				Flags: []cli.Flag{partnerFlag(), jsonFlag(),
					&cli.DurationFlag{Name: "interval", Value: time.Second, Usage: "time between two polls"}},
				Action: jobsWatch,
			},
		},
	}
}

// jobView is a job as --json prints it (the REST job's field names).
type jobView struct {
	ID         string     `json:"id"`
	Kind       string     `json:"kind"`
	State      string     `json:"state"`
	Total      int        `json:"total"`
	Done       int        `json:"done"`
	Failed     int        `json:"failed"`
	Percent    int        `json:"percent"`
	CreatedAt  time.Time  `json:"createdAt"`
	StartedAt  *time.Time `json:"startedAt"`
	FinishedAt *time.Time `json:"finishedAt"`
}

func newJobView(j *bulk.Job) jobView {
	return jobView{ID: j.ID.String(), Kind: j.Kind, State: j.State, Total: j.Total, Done: j.Done, Failed: j.Failed,
		Percent: percent(j), CreatedAt: j.CreatedAt, StartedAt: j.StartedAt, FinishedAt: j.FinishedAt}
}

// percent is how much of the job is processed (done or failed), 0-100; an
// empty job is 100% once finished.
func percent(j *bulk.Job) int {
	if j.Total == 0 {
		if j.Finished() {
			return 100
		}
		return 0
	}
	return (j.Done + j.Failed) * 100 / j.Total
}

func jobsList(ctx context.Context, cmd *cli.Command) error {
	limit := int(cmd.Int("limit"))
	if limit < 1 || limit > 1000 {
		return fmt.Errorf("%w: --limit must be between 1 and 1000", errUsage)
	}
	o, p, closeDB, err := openPartner(ctx, cmd, noKeys)
	if err != nil {
		return err
	}
	defer closeDB()
	jobs, err := o.svc.Bulk.List(ctx, o.db.Bun, p.ID, limit)
	if err != nil {
		return err
	}
	stdout := cmd.Root().Writer
	if cmd.Bool("json") {
		out := make([]jobView, len(jobs))
		for i := range jobs {
			out[i] = newJobView(&jobs[i])
		}
		return printJSON(stdout, out)
	}
	tw := newTable(stdout, "ID", "KIND", "STATE", "PROGRESS", "FAILED", "CREATED")
	for i := range jobs {
		j := &jobs[i]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d (%d%%)\t%d\t%s\n", j.ID, j.Kind, j.State, j.Done+j.Failed, j.Total, percent(j), j.Failed, j.CreatedAt.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}

// errJobFailed is returned by watch for a job that ended failed (exit 1).
var errJobFailed = errors.New("the job failed")

func jobsWatch(ctx context.Context, cmd *cli.Command) error {
	if cmd.Args().Len() != 1 {
		return fmt.Errorf("%w: `perks jobs watch` takes one job ID", errUsage)
	}
	id, err := uuid.Parse(cmd.Args().First())
	if err != nil {
		return fmt.Errorf("%w: %q is not a job ID (a UUID)", errUsage, cmd.Args().First())
	}
	interval := cmd.Duration("interval")
	if interval <= 0 {
		return fmt.Errorf("%w: --interval must be positive", errUsage)
	}
	o, p, closeDB, err := openPartner(ctx, cmd, noKeys)
	if err != nil {
		return err
	}
	defer closeDB()
	stdout := cmd.Root().Writer
	wait := waitFunc(cmd)
	asJSON, tty := cmd.Bool("json"), writerIsTerminal(stdout)
	var last jobView
	for first := true; ; first = false {
		j, err := o.svc.Bulk.Get(ctx, o.db.Bun, p.ID, id)
		if err != nil {
			return err
		}
		v := newJobView(j)
		changed := first || v.State != last.State || v.Done != last.Done || v.Failed != last.Failed
		last = v
		if changed {
			switch {
			case asJSON:
				if err := writeJSONLine(stdout, v); err != nil {
					return err
				}
			case tty:
				fmt.Fprintf(stdout, "\r\033[K%s", progressLine(j, 30))
			default:
				fmt.Fprintln(stdout, progressLine(j, 30))
			}
		}
		if j.Finished() {
			if tty && !asJSON {
				fmt.Fprintln(stdout)
			}
			if j.State == bulk.StateFailed {
				return fmt.Errorf("%w: %s (see GET /integrations/jobs/%s?only=errors)", errJobFailed, j.ID, j.ID)
			}
			return nil
		}
		if err := wait(ctx, interval); err != nil {
			return err
		}
	}
}

// progressLine is one line of watch: a bar of width cells, the percentage,
// the counts and the state, e.g.
//
//	[###############---------------]  50%  600/1200 processed, 3 failed  running
func progressLine(j *bulk.Job, width int) string {
	pc := percent(j)
	filled := pc * width / 100
	return fmt.Sprintf("[%s%s] %3d%%  %d/%d processed, %d failed  %s",
		strings.Repeat("#", filled), strings.Repeat("-", width-filled), pc, j.Done+j.Failed, j.Total, j.Failed, j.State)
}

func writeJSONLine(w io.Writer, v any) error {
	var b strings.Builder
	if err := printJSONCompact(&b, v); err != nil {
		return err
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writerIsTerminal reports whether w is a terminal, where watch redraws
// one line instead of printing one per change.
func writerIsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isTerminal(f)
}

// waitMetadata is the root command's Metadata key of the runner's wait
// between two polls (tests drive the job from it instead of sleeping).
const waitMetadata = "perks.wait"

// waitFunc returns how the command waits between two polls: the runner's
// hook when set, else a timer that ctx cancels.
func waitFunc(cmd *cli.Command) func(context.Context, time.Duration) error {
	if w, ok := cmd.Root().Metadata[waitMetadata].(func(context.Context, time.Duration) error); ok && w != nil {
		return w
	}
	return func(ctx context.Context, d time.Duration) error {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return nil
		}
	}
}
