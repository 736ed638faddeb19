package main

import (
	"context"
	"fmt"
	"sort"

	"github.com/uptrace/bun"
	"github.com/urfave/cli/v3"

	"github.com/perkshq/perks/internal/audit"
	"github.com/perkshq/perks/internal/partner"
)

const sandboxDescription = `A partner's sandbox (docs/sandbox.md) is a partner of its own, slug <slug>-sandbox,
with its own data, credentials and webhooks; every API answer from it carries
Perks-Environment: sandbox. Without a subcommand: create the sandbox of --partner
(printing the secret of its first HMAC credential, once) or show the existing one.`

func sandboxCommand() *cli.Command {
	return &cli.Command{
		Name:        "sandbox",
		Usage:       "create or show a partner's sandbox; reset it",
		Description: sandboxDescription,
		Flags:       []cli.Flag{partnerFlag()},
		Action:      sandboxCreate,
		Commands: []*cli.Command{
			{
				Name:  "reset",
				Usage: "wipe the sandbox's data, keep its credentials (--yes)",
				Description: "Deletes the sandbox's users, points, vouchers, catalog, rules, ads, events and jobs; keeps\n" +
					"its credentials, consumer keys, webhook endpoints and merchants. --partner may name the\n" +
					"live partner or the sandbox. Live data is never touched.",
				Flags:  []cli.Flag{partnerFlag(), &cli.BoolFlag{Name: "yes", Usage: "confirm the reset"}},
				Action: sandboxReset,
			},
		},
	}
}

func sandboxCreate(ctx context.Context, cmd *cli.Command) error {
	stdout := cmd.Root().Writer
	o, p, closeDB, err := openPartner(ctx, cmd, withKeys)
	if err != nil {
		return err
	}
	defer closeDB()
	var res *partner.NewSandbox
	err = o.db.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		res, err = o.svc.Partners.CreateSandboxTx(ctx, tx, p.ID)
		if err != nil || !res.Created {
			return err
		}
		_, err = o.svc.Audit.RecordTx(ctx, tx, audit.Change{Realm: audit.RealmPartner, RealmID: p.ID,
			Actor: audit.Actor{Kind: audit.ActorOperator, Label: "perks partner sandbox"}, Action: "sandbox.create",
			Target: "partner " + res.Sandbox.Slug, After: map[string]any{"id": res.Sandbox.ID, "slug": res.Sandbox.Slug}})
		return err
	})
	if err != nil {
		return err
	}
	sb := res.Sandbox
	if res.Created {
		fmt.Fprintf(stdout, "created sandbox %s (%s) of %s\n", sb.Slug, sb.ID, p.Slug)
		fmt.Fprintf(stdout, "hmac secret: %s   (shown once: save it now)\n", res.HMACSecret)
	} else {
		fmt.Fprintf(stdout, "sandbox %s (%s) exists\n", sb.Slug, sb.ID)
		fmt.Fprintf(stdout, "new credential: perks partner credential create --partner %s --kind hmac|ed25519|request_jwt\n", sb.Slug)
	}
	return nil
}

func sandboxReset(ctx context.Context, cmd *cli.Command) error {
	stdout := cmd.Root().Writer
	if !cmd.Bool("yes") {
		return fmt.Errorf("a reset deletes the sandbox's data: add --yes")
	}
	o, p, closeDB, err := openPartner(ctx, cmd, withKeys)
	if err != nil {
		return err
	}
	defer closeDB()
	sb, err := o.svc.Partners.Sandbox(ctx, o.db.Bun, p.ID)
	if err != nil {
		return fmt.Errorf("partner %s: %w", p.Slug, err)
	}
	var deleted map[string]int64
	err = o.db.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if deleted, err = o.svc.Partners.ResetSandboxTx(ctx, tx, sb.ID); err != nil {
			return err
		}
		_, err = o.svc.Audit.RecordTx(ctx, tx, audit.Change{Realm: audit.RealmPartner, RealmID: sb.ID,
			Actor: audit.Actor{Kind: audit.ActorOperator, Label: "perks partner sandbox reset"}, Action: "sandbox.reset",
			Target: "partner " + sb.Slug, After: map[string]any{"deleted": deleted}})
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "reset sandbox %s; credentials kept\n", sb.Slug)
	tables := make([]string, 0, len(deleted))
	for t := range deleted {
		tables = append(tables, t)
	}
	sort.Strings(tables)
	for _, t := range tables {
		fmt.Fprintf(stdout, "  %s: %d deleted\n", t, deleted[t])
	}
	return nil
}
