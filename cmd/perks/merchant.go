package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/merchant"
	"github.com/perkshq/perks/internal/partner"
)

const merchantUsage = `Usage:
  perks merchant create  --partner SLUG --name NAME [--code CODE] [--key-out FILE]
  perks merchant list    --partner SLUG
  perks merchant disable --partner SLUG --code CODE

create prints the merchant's API key and its Ed25519 private key (PKCS#8
PEM) once: Perks keeps only the key's SHA-256 and the public key. With
--key-out the private key goes to FILE (mode 0600) instead of stdout.
A gift lists the merchants that honour it by code
(PUT /integrations/gifts/{sku} {"merchants": ["CODE"]}).`

func runMerchant(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(stderr, merchantUsage)
		return errUsage
	}
	sub := args[0]
	fs := flag.NewFlagSet("merchant "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, merchantUsage) }
	slug := fs.String("partner", "", "partner slug (required)")
	name := fs.String("name", "", "merchant name (create)")
	code := fs.String("code", "", "merchant code: lowercase letters, digits, '-', '_' (create: derived from --name when omitted)")
	keyOut := fs.String("key-out", "", "write the private key to this file (0600) instead of stdout (create)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *slug == "" {
		fs.Usage()
		return errors.New("--partner is required")
	}
	switch sub {
	case "create", "list", "disable":
	default:
		fs.Usage()
		return errUsage
	}
	_, db, closeDB, err := open(ctx, stderr)
	if err != nil {
		return err
	}
	defer closeDB()
	// Looking a partner up needs no secrets: the keyring is not involved.
	p, err := partner.NewService(nil).BySlug(ctx, db.Bun, *slug)
	if err != nil {
		return fmt.Errorf("partner %s: %w", *slug, err)
	}
	svc := merchant.NewService()
	switch sub {
	case "create":
		if *name == "" {
			return errors.New("--name is required")
		}
		// Claim the key file first, so a merchant is never created whose
		// private key cannot be written.
		var keyFile *os.File
		if *keyOut != "" {
			if keyFile, err = os.OpenFile(*keyOut, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); err != nil {
				return fmt.Errorf("private key file: %w", err)
			}
			defer keyFile.Close()
		}
		var m *merchant.Merchant
		var cred *merchant.NewCredential
		err := db.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			var err error
			m, cred, err = svc.Create(ctx, tx, p.ID, *name, *code)
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
				_ = os.Remove(*keyOut)
			}
			return err
		}
		fmt.Fprintf(stdout, "merchant:    %s (%s) of partner %s\n", m.Code, m.Name, p.Slug)
		fmt.Fprintf(stdout, "id:          %s\n", m.ID)
		fmt.Fprintf(stdout, "credential:  %s\n", cred.Credential.ID)
		fmt.Fprintf(stdout, "api key:     %s\n", cred.APIKey)
		if *keyOut != "" {
			fmt.Fprintf(stdout, "private key: %s (Ed25519, PKCS#8 PEM)\n", *keyOut)
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
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "CODE\tNAME\tENABLED\tID\tCREDENTIALS\tLAST USED")
		for _, m := range ms {
			creds, err := svc.Credentials(ctx, db.Bun, p.ID, m.ID)
			if err != nil {
				return err
			}
			enabled, last := 0, "never"
			for _, c := range creds {
				if c.Enabled {
					enabled++
				}
				if c.LastUsedAt != nil {
					last = c.LastUsedAt.UTC().Format(time.RFC3339)
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%d enabled of %d\t%s\n", m.Code, m.Name, m.Enabled, m.ID, enabled, len(creds), last)
		}
		return tw.Flush()
	default: // disable
		if *code == "" {
			return errors.New("--code is required")
		}
		if err := svc.SetEnabled(ctx, db.Bun, p.ID, *code, false); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "merchant %s of partner %s disabled: its credentials no longer authenticate\n", *code, p.Slug)
		return nil
	}
}
