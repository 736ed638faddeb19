package main

import (
	"context"
	"fmt"

	"github.com/uptrace/bun"
	"github.com/urfave/cli/v3"

	"github.com/perkshq/perks/internal/account"
	"github.com/perkshq/perks/internal/audit"
	"github.com/perkshq/perks/internal/mailer"
	"github.com/perkshq/perks/internal/portal"
)

const portalDescription = `invite creates a partner portal account (or re-invites one not yet active)
and prints its activation link, or mails it when PERKS_SMTP_URL is set: single use, valid 72 hours; inviting again
prints a new link and retires the old one. The link's host is
PERKS_PUBLIC_BASE_URL. The invitation is audited as "cli".

  perks portal invite --partner SLUG --email ADDRESS [--role owner] [--name NAME]

Roles: owner (everything, manages users), developer (credentials, keys,
webhooks), manager (catalog, rules, ads, program), support (users), viewer.`

func portalCommand() *cli.Command {
	return &cli.Command{
		Name:        "portal",
		Usage:       "partner portal accounts: invite",
		Description: portalDescription,
		Commands: []*cli.Command{{
			Name:  "invite",
			Usage: "invite someone to a partner's portal and print the activation link",
			Flags: []cli.Flag{
				partnerFlag(),
				&cli.StringFlag{Name: "email", Usage: "the person's `ADDRESS`"},
				&cli.StringFlag{Name: "role", Value: account.RoleOwner, Usage: "`owner|developer|manager|support|viewer`"},
				&cli.StringFlag{Name: "name", Usage: "the person's name"},
			},
			Action: portalInvite,
		}},
	}
}

func portalInvite(ctx context.Context, cmd *cli.Command) error {
	if cmd.String("email") == "" {
		return fmt.Errorf("%w: --email is required", errUsage)
	}
	// Inviting seals nothing: the keyring is not involved.
	o, p, closeDB, err := openPartner(ctx, cmd, noKeys)
	if err != nil {
		return err
	}
	defer closeDB()
	if err := p.CheckInvitable(); err != nil {
		return err
	}
	var inv *account.Invitation
	err = o.db.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		inv, err = o.svc.Accounts.InviteTx(ctx, tx, account.InviteParams{
			Realm: account.RealmPartner, RealmID: p.ID, Email: cmd.String("email"), Name: cmd.String("name"), Role: cmd.String("role"),
			Actor: audit.Actor{Kind: audit.ActorOperator, Label: "cli"},
		})
		return err
	})
	if err != nil {
		return err
	}
	w := cmd.Root().Writer
	link := portal.ActivationLink(o.cfg.PublicBaseURL, inv.Token)
	until := inv.ExpiresAt.UTC().Format("2006-01-02 15:04 UTC")
	if o.cfg.SMTPURL != "" {
		m, err := mailer.New(o.cfg.SMTPURL, o.cfg.SMTPFrom)
		if err != nil {
			return err
		}
		if err := m.SendActivation(ctx, inv.Account.Email, link, inv.ExpiresAt); err != nil {
			return fmt.Errorf("the invitation is recorded but the mail failed (run invite again for a new link): %w", err)
		}
		fmt.Fprintf(w, "invited %s as %s of %s; the activation link was mailed (single use, until %s)\n", inv.Account.Email, inv.Account.Role, p.Slug, until)
		return nil
	}
	fmt.Fprintf(w, "invited %s as %s of %s; send them this activation link (single use, until %s):\n%s\n",
		inv.Account.Email, inv.Account.Role, p.Slug, until, link)
	return nil
}
