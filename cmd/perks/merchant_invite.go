package main

import (
	"context"
	"fmt"

	"github.com/uptrace/bun"
	"github.com/urfave/cli/v3"

	"github.com/perkshq/perks/internal/account"
	"github.com/perkshq/perks/internal/audit"
	"github.com/perkshq/perks/internal/mailer"
	"github.com/perkshq/perks/internal/merchantportal"
)

// merchantInviteCommand is `perks merchant invite`: the merchant portal's
// counterpart of `perks portal invite` (issue 17).
func merchantInviteCommand() *cli.Command {
	return &cli.Command{
		Name:  "invite",
		Usage: "invite someone to a merchant's portal (/merchant) and print the activation link",
		Description: `invite creates a merchant portal account (or re-invites one not yet active)
and prints its activation link, or mails it when PERKS_SMTP_URL is set: single use, valid 72 hours;
inviting again prints a new link and retires the old one. The merchant is named by its partner and
code; an account belongs to the merchant, whichever partners it serves. Audited as "cli".

  perks merchant invite --partner SLUG --code CODE --email ADDRESS [--role admin] [--name NAME]

Roles: admin (team, API credentials, every redemption), operator_redeem (till: look up and
redeem), operator (till: look up and validate only).`,
		Flags: []cli.Flag{
			partnerFlag(),
			&cli.StringFlag{Name: "code", Usage: "merchant `CODE`"},
			&cli.StringFlag{Name: "email", Usage: "the person's `ADDRESS`"},
			&cli.StringFlag{Name: "role", Value: account.RoleMerchantAdmin, Usage: "`admin|operator_redeem|operator`"},
			&cli.StringFlag{Name: "name", Usage: "the person's name (shown in the redemption history)"},
		},
		Action: merchantInvite,
	}
}

func merchantInvite(ctx context.Context, cmd *cli.Command) error {
	if cmd.String("email") == "" || cmd.String("code") == "" {
		return fmt.Errorf("%w: --code and --email are required", errUsage)
	}
	o, p, closeDB, err := openPartner(ctx, cmd, noKeys)
	if err != nil {
		return err
	}
	defer closeDB()
	m, err := o.svc.Merchants.ByCode(ctx, o.db.Bun, p.ID, cmd.String("code"))
	if err != nil {
		return err
	}
	var inv *account.Invitation
	err = o.db.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		inv, err = o.svc.Accounts.InviteTx(ctx, tx, account.InviteParams{
			Realm: account.RealmMerchant, RealmID: m.ID, Email: cmd.String("email"), Name: cmd.String("name"), Role: cmd.String("role"),
			Actor: audit.Actor{Kind: audit.ActorOperator, Label: "cli"},
		})
		return err
	})
	if err != nil {
		return err
	}
	w := cmd.Root().Writer
	link := merchantportal.ActivationLink(o.cfg.PublicBaseURL, inv.Token)
	until := inv.ExpiresAt.UTC().Format("2006-01-02 15:04 UTC")
	if o.cfg.SMTPURL != "" {
		ml, err := mailer.New(o.cfg.SMTPURL, o.cfg.SMTPFrom)
		if err != nil {
			return err
		}
		if err := ml.SendActivation(ctx, inv.Account.Email, link, inv.ExpiresAt); err != nil {
			return fmt.Errorf("the invitation is recorded but the mail failed (run invite again for a new link): %w", err)
		}
		fmt.Fprintf(w, "invited %s as %s of merchant %s; the activation link was mailed (single use, until %s)\n", inv.Account.Email, inv.Account.Role, m.Code, until)
		return nil
	}
	fmt.Fprintf(w, "invited %s as %s of merchant %s; send them this activation link (single use, until %s):\n%s\n",
		inv.Account.Email, inv.Account.Role, m.Code, until, link)
	return nil
}

// merchantAttachCommand is `perks merchant attach`: one shop serving
// several partners (docs/merchant.md, "Several partners").
func merchantAttachCommand() *cli.Command {
	return &cli.Command{
		Name:  "attach",
		Usage: "make a merchant of one partner a merchant of another partner too (one portal, both programs)",
		Description: `attach adds the merchant --code of --partner to partner --to, under --as (default: the same code).
Its portal users then see --to's vouchers wherever --to's gifts list that code. API credentials stay
per partner (create them in the portal). Attaching twice changes nothing.

  perks merchant attach --partner SLUG --code CODE --to OTHER_SLUG [--as CODE_THERE]`,
		Flags: []cli.Flag{
			partnerFlag(),
			&cli.StringFlag{Name: "code", Usage: "merchant `CODE` at --partner"},
			&cli.StringFlag{Name: "to", Usage: "the other partner's `SLUG`"},
			&cli.StringFlag{Name: "as", Usage: "the merchant's `CODE` at --to (default: --code)"},
		},
		Action: merchantAttach,
	}
}

func merchantAttach(ctx context.Context, cmd *cli.Command) error {
	if cmd.String("code") == "" || cmd.String("to") == "" {
		return fmt.Errorf("%w: --code and --to are required", errUsage)
	}
	o, p, closeDB, err := openPartner(ctx, cmd, noKeys)
	if err != nil {
		return err
	}
	defer closeDB()
	m, err := o.svc.Merchants.ByCode(ctx, o.db.Bun, p.ID, cmd.String("code"))
	if err != nil {
		return err
	}
	to, err := o.svc.Partners.BySlug(ctx, o.db.Bun, cmd.String("to"))
	if err != nil {
		return fmt.Errorf("partner %s: %w", cmd.String("to"), err)
	}
	var code string
	err = o.db.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		am, attached, err := o.svc.Merchants.AttachTx(ctx, tx, m.ID, to.ID, cmd.String("as"))
		if err != nil || !attached {
			if am != nil {
				code = am.Code
			}
			return err
		}
		code = am.Code
		_, err = o.svc.Audit.RecordTx(ctx, tx, audit.Change{Realm: account.RealmMerchant, RealmID: m.ID,
			Actor: audit.Actor{Kind: audit.ActorOperator, Label: "cli"}, Action: "merchant.attach", Target: to.Slug,
			After: map[string]any{"partner": to.Slug, "code": code}})
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.Root().Writer, "merchant %s of %s now also serves %s as %s\n", m.Code, p.Slug, to.Slug, code)
	return nil
}
