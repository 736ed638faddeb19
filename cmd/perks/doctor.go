package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/perkshq/perks/internal/config"
	"github.com/perkshq/perks/internal/doctor"
)

const doctorDescription = `Run it with the server's environment (DATABASE_URL, PERKS_MASTER_KEY, ...)
on a host of the deployment. It checks, reading only:

  database         reachable from this host
  migrations       every migration applied
  master key       PERKS_MASTER_KEY is the key the database's secrets were sealed with
  clock            this host's clock agrees with the database's (warn > 1 s, fail > 30 s)
  river leader     a process leads River, so workers run jobs
  webhook backlog  deliveries due are not late (warn > 5 min, fail > 1 h)

Each check that is not ok says what to fix. Exit status 1 when a check fails.`

func doctorCommand() *cli.Command {
	return &cli.Command{
		Name:        "doctor",
		Usage:       "check a deployment and say what to fix",
		Description: doctorDescription,
		Flags:       []cli.Flag{jsonFlag()},
		Action:      runDoctor,
	}
}

// nowMetadata is the root command's Metadata key of the runner's clock
// (tests skew it).
const nowMetadata = "perks.now"

// errDoctor: a check failed (exit 1); the report says which.
var errDoctor = errors.New("a check failed")

func runDoctor(ctx context.Context, cmd *cli.Command) error {
	cfg, err := config.Load(getenv(cmd))
	if err != nil {
		return err
	}
	now, _ := cmd.Root().Metadata[nowMetadata].(func() time.Time)
	results := doctor.Run(ctx, doctor.Options{Config: cfg, Now: now})
	stdout := cmd.Root().Writer
	if cmd.Bool("json") {
		if err := printJSON(stdout, results); err != nil {
			return err
		}
	} else {
		tw := newTable(stdout)
		for _, r := range results {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", strings.ToUpper(string(r.Status)), r.Check, r.Detail)
			if r.Fix != "" {
				fmt.Fprintf(tw, "\t\tfix: %s\n", r.Fix)
			}
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if doctor.Failed(results) {
		return errDoctor
	}
	return nil
}
