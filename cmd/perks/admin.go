package main

import (
	"context"
	"fmt"

	"github.com/uptrace/bun"
	"github.com/urfave/cli/v3"

	"github.com/perkshq/perks/internal/account"
	"github.com/perkshq/perks/internal/audit"
	"github.com/perkshq/perks/internal/console"
	"github.com/perkshq/perks/internal/mailer"
	"github.com/perkshq/perks/internal/partner"
)

const adminDescription = `Platform admins sign in to the console at /admin (docs/admin.md). They are
created here only, never from a web page: create prints the activation link
(or mails it when PERKS_SMTP_URL is set): single use, valid 72 hours;
creating again for an address not yet active prints a new link and retires
the old one. Activation sets a password and a TOTP second factor, as in the
partner portal. The creation is audited as "cli".

  perks admin create --email ADDRESS [--name NAME]`

func adminCommand() *cli.Command {
	return &cli.Command{
		Name:        "admin",
		Usage:       "platform admins of the console (/admin): create",
		Description: adminDescription,
		Commands: []*cli.Command{{
			Name:  "create",
			Usage: "create a platform admin and print the activation link",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "email", Usage: "the person's `ADDRESS`"},
				&cli.StringFlag{Name: "name", Usage: "the person's name"},
			},
			Action: adminCreate,
		}},
	}
}

func adminCreate(ctx context.Context, cmd *cli.Command) error {
	if cmd.String("email") == "" {
		return fmt.Errorf("%w: --email is required", errUsage)
	}
	o, closeDB, err := openOperator(ctx, cmd, noKeys)
	if err != nil {
		return err
	}
	defer closeDB()
	var inv *account.Invitation
	err = o.db.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		inv, err = o.svc.Accounts.InviteTx(ctx, tx, account.InviteParams{
			Realm: account.RealmPlatform, Email: cmd.String("email"), Name: cmd.String("name"), Role: account.RolePlatformAdmin,
			Actor: audit.Actor{Kind: audit.ActorOperator, Label: "cli"},
		})
		return err
	})
	if err != nil {
		return err
	}
	w := cmd.Root().Writer
	link := console.ActivationLink(o.cfg.PublicBaseURL, inv.Token)
	until := inv.ExpiresAt.UTC().Format("2006-01-02 15:04 UTC")
	if o.cfg.SMTPURL != "" {
		m, err := mailer.New(o.cfg.SMTPURL, o.cfg.SMTPFrom)
		if err != nil {
			return err
		}
		if err := m.SendActivation(ctx, inv.Account.Email, link, inv.ExpiresAt); err != nil {
			return fmt.Errorf("the admin is recorded but the mail failed (run create again for a new link): %w", err)
		}
		fmt.Fprintf(w, "created platform admin %s; the activation link was mailed (single use, until %s)\n", inv.Account.Email, until)
		return nil
	}
	fmt.Fprintf(w, "created platform admin %s; send them this activation link (single use, until %s):\n%s\n", inv.Account.Email, until, link)
	return nil
}

// partnerStatusCommands are `perks partner approve|suspend|resume`: the
// console's onboarding buttons for automation (same service call, audited
// as "cli").
func partnerStatusCommands() []*cli.Command {
	cmd := func(action, usage string) *cli.Command {
		return &cli.Command{
			Name: action, Usage: usage, Flags: []cli.Flag{partnerFlag()},
			Action: func(ctx context.Context, cmd *cli.Command) error {
				o, p, closeDB, err := openPartner(ctx, cmd, noKeys)
				if err != nil {
					return err
				}
				defer closeDB()
				err = o.db.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
					p, err = o.svc.Partners.SetStatusTx(ctx, tx, o.svc.Audit, audit.Actor{Kind: audit.ActorOperator, Label: "cli"}, p.ID, action)
					return err
				})
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.Root().Writer, "partner %s is %s\n", p.Slug, p.Status)
				return nil
			},
		}
	}
	return []*cli.Command{
		cmd(partner.ActionApprove, "approve a pending partner's onboarding: its API access starts"),
		cmd(partner.ActionSuspend, "suspend a partner: its API calls, consumer tokens and webhooks stop"),
		cmd(partner.ActionResume, "resume a suspended partner"),
	}
}

// withSub adds subcommands to a command (the partner command gets the
// onboarding ones from this file).
func withSub(c *cli.Command, sub ...*cli.Command) *cli.Command {
	c.Commands = append(c.Commands, sub...)
	return c
}

// pendingIf is the status of `perks partner create --pending`.
func pendingIf(pending bool) string {
	if pending {
		return partner.StatusPending
	}
	return ""
}
