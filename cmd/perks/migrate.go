package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/perkshq/perks/internal/config"
	"github.com/perkshq/perks/internal/database"
)

const migrateDownDescription = `Rolls back applied migrations, newest first. Down migrations drop tables and
their data, so the command needs all of:

  - a target: --to VERSION keeps VERSION (a timestamp from ` + "`perks migrate status`" + `)
    and everything before it applied; --to 0 rolls back everything; --steps N
    rolls back the N most recent. There is no default.
  - a confirmation: --yes, or answering "yes" at the prompt when stdin is a
    terminal.
  - with PERKS_ENV=production, --allow-production as well.

The plan is printed first; if the applied migrations change before the
rollback starts (a replica migrating), nothing is rolled back.`

func migrateCommand() *cli.Command {
	return &cli.Command{
		Name:        "migrate",
		Usage:       "apply, roll back or list the database migrations",
		Description: "`perks migrate` alone is `perks migrate up`.",
		Commands: []*cli.Command{
			{
				Name:   "up",
				Usage:  "apply every pending migration",
				Action: migrateUp,
			},
			{
				Name:        "down",
				Usage:       "roll back to an explicit version or by a number of steps (asks for confirmation)",
				Description: migrateDownDescription,
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "to", Usage: "roll back every migration after `VERSION` (0 = all)"},
					&cli.IntFlag{Name: "steps", Usage: "roll back the `N` most recent migrations"},
					&cli.BoolFlag{Name: "yes", Usage: "do not ask for confirmation"},
					&cli.BoolFlag{Name: "allow-production", Usage: "allow a rollback with PERKS_ENV=production"},
				},
				Action: migrateDown,
			},
			{
				Name:   "status",
				Usage:  "list the migrations and whether each is applied",
				Flags:  []cli.Flag{jsonFlag()},
				Action: migrateStatus,
			},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.Args().Present() {
				return groupAction(ctx, cmd)
			}
			return migrateUp(ctx, cmd)
		},
	}
}

func migrateUp(ctx context.Context, cmd *cli.Command) error {
	stderr := cmd.Root().ErrWriter
	cfg, db, closeDB, err := openSession(ctx, cmd)
	if err != nil {
		return err
	}
	defer closeDB()
	return database.Migrate(ctx, db.Bun, newLogger(stderr, cfg.LogLevel))
}

func migrateStatus(ctx context.Context, cmd *cli.Command) error {
	stdout := cmd.Root().Writer
	_, db, closeDB, err := openSession(ctx, cmd)
	if err != nil {
		return err
	}
	defer closeDB()
	if !cmd.Bool("json") {
		return database.Status(ctx, db.Bun, stdout)
	}
	ms, err := database.Statuses(ctx, db.Bun)
	if err != nil {
		return err
	}
	type row struct {
		Version    string     `json:"version"`
		Name       string     `json:"name"`
		Applied    bool       `json:"applied"`
		Group      int64      `json:"group,omitempty"`
		MigratedAt *time.Time `json:"migratedAt,omitempty"`
	}
	out := make([]row, 0, len(ms))
	for _, mg := range ms {
		r := row{Version: mg.Name, Name: mg.Comment, Applied: mg.IsApplied()}
		if r.Applied {
			at := mg.MigratedAt.UTC()
			r.Group, r.MigratedAt = mg.GroupID, &at
		}
		out = append(out, r)
	}
	return printJSON(stdout, out)
}

// errNotConfirmed is the answer to a rollback nobody confirmed.
var errNotConfirmed = errors.New("not confirmed: nothing was rolled back")

func migrateDown(ctx context.Context, cmd *cli.Command) error {
	stdout, stderr := cmd.Root().Writer, cmd.Root().ErrWriter
	target := database.RollbackTarget{To: cmd.String("to"), Steps: cmd.Int("steps")}
	if !cmd.IsSet("to") && !cmd.IsSet("steps") {
		return fmt.Errorf("%w: refusing to roll back without a target: give --to VERSION (see `perks migrate status`) or --steps N", errUsage)
	}
	if cmd.IsSet("steps") && target.Steps < 1 {
		return fmt.Errorf("%w: --steps must be 1 or more", errUsage)
	}
	if cmd.IsSet("to") && target.To == "" {
		return fmt.Errorf("%w: --to needs a version (0 rolls back everything)", errUsage)
	}
	// The environment is read before the database is opened: production
	// is refused without touching it.
	cfg, err := config.Load(getenv(cmd))
	if err != nil {
		return err
	}
	if cfg.Env == config.EnvProduction && !cmd.Bool("allow-production") {
		return errors.New("refusing to roll back with PERKS_ENV=production: down migrations drop tables and data; pass --allow-production if you mean it (take a backup first)")
	}
	_, db, closeDB, err := openSession(ctx, cmd)
	if err != nil {
		return err
	}
	defer closeDB()
	plan, err := database.RollbackPlan(ctx, db.Bun, target)
	if err != nil {
		return err
	}
	if len(plan) == 0 {
		fmt.Fprintln(stdout, "nothing to roll back: the database is already at that version")
		return nil
	}
	fmt.Fprintf(stdout, "rolling back %d migration(s), newest first (their tables and data are dropped):\n", len(plan))
	for _, mg := range plan {
		fmt.Fprintf(stdout, "  %s\n", mg.String())
	}
	if !cmd.Bool("yes") {
		if err := confirm(cmd.Root().Reader, stdout); err != nil {
			return err
		}
	}
	if err := database.RollbackTo(ctx, db.Bun, newLogger(stderr, cfg.LogLevel), target, plan); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "rolled back %d migration(s)\n", len(plan))
	return nil
}

// confirm asks on a terminal and refuses otherwise: a rollback in a script
// must say --yes.
func confirm(in io.Reader, out io.Writer) error {
	if !isTTY(in) {
		return errors.New("refusing to roll back without confirmation: stdin is not a terminal, pass --yes")
	}
	fmt.Fprint(out, `type "yes" to roll back: `)
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if strings.TrimSpace(line) != "yes" {
		return errNotConfirmed
	}
	return nil
}

// isTTY reports whether r is an interactive terminal. A reader may say so
// itself (tests); otherwise only a character device counts.
func isTTY(r io.Reader) bool {
	if t, ok := r.(interface{ IsTerminal() bool }); ok {
		return t.IsTerminal()
	}
	f, ok := r.(*os.File)
	return ok && isTerminal(f)
}
