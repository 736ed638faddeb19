package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/uptrace/bun"
	"github.com/urfave/cli/v3"

	"github.com/perkshq/perks/internal/merchant"
)

const merchantDescription = `create prints the merchant's API key and its Ed25519 private key (PKCS#8
PEM) once: Perks keeps only the key's SHA-256 and the public key. With
--key-out the private key goes to FILE (mode 0600) instead of stdout.
A gift lists the merchants that honour it by code
(PUT /integrations/gifts/{sku} {"merchants": ["CODE"]}).

  perks merchant create  --partner SLUG --name NAME [--code CODE] [--key-out FILE]
  perks merchant list    --partner SLUG [--json]
  perks merchant disable --partner SLUG --code CODE
  perks merchant invite  --partner SLUG --code CODE --email ADDRESS [--role admin|operator_redeem|operator]
  perks merchant attach  --partner SLUG --code CODE --to OTHER_SLUG [--as CODE]`

func merchantCommand() *cli.Command {
	sub := func(name, usage string, flags ...cli.Flag) *cli.Command {
		return &cli.Command{
			Name: name, Usage: usage, Flags: append([]cli.Flag{partnerFlag()}, flags...),
			Action: func(ctx context.Context, cmd *cli.Command) error { return runMerchant(ctx, cmd, name) },
		}
	}
	return &cli.Command{
		Name:        "merchant",
		Usage:       "merchants and their API credentials",
		Description: merchantDescription,
		Commands: []*cli.Command{
			sub("create", "create a merchant; its API key and private key are printed once",
				&cli.StringFlag{Name: "name", Usage: "merchant name"},
				&cli.StringFlag{Name: "code", Usage: "merchant `CODE`: lowercase letters, digits, '-', '_' (derived from --name when omitted)"},
				&cli.StringFlag{Name: "key-out", Usage: "write the private key to this `FILE` (0600) instead of stdout"}),
			sub("list", "list the partner's merchants", jsonFlag()),
			sub("disable", "disable a merchant: its credentials no longer authenticate",
				&cli.StringFlag{Name: "code", Usage: "merchant `CODE`"}),
			merchantInviteCommand(),
			merchantAttachCommand(),
		},
	}
}

func runMerchant(ctx context.Context, cmd *cli.Command, sub string) error {
	stdout := cmd.Root().Writer
	name, code, keyOut := cmd.String("name"), cmd.String("code"), cmd.String("key-out")
	// Merchants hold no sealed secrets: the keyring is not involved.
	o, p, closeDB, err := openPartner(ctx, cmd, noKeys)
	if err != nil {
		return err
	}
	defer closeDB()
	db, svc := o.db, o.svc.Merchants
	switch sub {
	case "create":
		if name == "" {
			return errors.New("--name is required")
		}
		// Claim the key file first, so a merchant is never created whose
		// private key cannot be written.
		var keyFile *os.File
		if keyOut != "" {
			if keyFile, err = os.OpenFile(keyOut, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); err != nil {
				return fmt.Errorf("private key file: %w", err)
			}
			defer keyFile.Close()
		}
		var m *merchant.Merchant
		var cred *merchant.NewCredential
		err := db.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			var err error
			m, cred, err = svc.CreateTx(ctx, tx, p.ID, name, code)
			if err != nil {
				return err
			}
			if keyFile != nil {
				if _, err := keyFile.WriteString(cred.PrivateKeyPEM); err != nil {
					return fmt.Errorf("write private key: %w", err)
				}
				return keyFile.Sync()
			}
			return nil
		})
		if err != nil {
			if keyFile != nil {
				_ = os.Remove(keyOut)
			}
			return err
		}
		fmt.Fprintf(stdout, "merchant:    %s (%s) of partner %s\n", m.Code, m.Name, p.Slug)
		fmt.Fprintf(stdout, "id:          %s\n", m.ID)
		fmt.Fprintf(stdout, "credential:  %s\n", cred.Credential.ID)
		fmt.Fprintf(stdout, "api key:     %s\n", cred.APIKey)
		if keyOut != "" {
			fmt.Fprintf(stdout, "private key: %s (Ed25519, PKCS#8 PEM)\n", keyOut)
		} else {
			fmt.Fprintf(stdout, "private key (Ed25519, PKCS#8 PEM):\n%s", cred.PrivateKeyPEM)
		}
		fmt.Fprintln(stdout, "\nThe API key and the private key are shown only now: store them in a secret manager.")
		return nil
	case "list":
		ms, err := svc.List(ctx, db.Bun, p.ID)
		if err != nil {
			return err
		}
		type row struct {
			Code               string     `json:"code"`
			Name               string     `json:"name"`
			Enabled            bool       `json:"enabled"`
			ID                 string     `json:"id"`
			EnabledCredentials int        `json:"enabledCredentials"`
			Credentials        int        `json:"credentials"`
			LastUsedAt         *time.Time `json:"lastUsedAt"`
		}
		rows := make([]row, 0, len(ms))
		tw := newTable(stdout, "CODE", "NAME", "ENABLED", "ID", "CREDENTIALS", "LAST USED")
		for _, m := range ms {
			creds, err := svc.Credentials(ctx, db.Bun, p.ID, m.ID)
			if err != nil {
				return err
			}
			enabled, last := 0, "never"
			var lastAt *time.Time
			for _, c := range creds {
				if c.Enabled {
					enabled++
				}
				if c.LastUsedAt != nil {
					last = c.LastUsedAt.UTC().Format(time.RFC3339)
					lastAt = c.LastUsedAt
				}
			}
			rows = append(rows, row{m.Code, m.Name, m.Enabled, m.ID.String(), enabled, len(creds), lastAt})
			fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%d enabled of %d\t%s\n", m.Code, m.Name, m.Enabled, m.ID, enabled, len(creds), last)
		}
		if cmd.Bool("json") {
			return printJSON(stdout, rows)
		}
		return tw.Flush()
	default: // disable
		if code == "" {
			return errors.New("--code is required")
		}
		if err := svc.SetEnabled(ctx, db.Bun, p.ID, code, false); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "merchant %s of partner %s disabled: its credentials no longer authenticate\n", code, p.Slug)
		return nil
	}
}
