package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/partner"
)

const keyUsage = `Usage: perks key <subcommand> [flags]

Keys that verify a partner's consumer JWTs (several per partner; kid selects one).

Subcommands:
  add      --partner S --kid K (--pem FILE | --secret-file FILE | --generate-secret) [--alg RS256|ES256|EdDSA|HS256] [--description D]
  add      --partner S --jwks-url URL          (keys published by the partner, fetched and cached)
  list     --partner S
  disable  --partner S --kid K                 (stops verifying with the next request)
  enable   --partner S --kid K
  rotate   --partner S --kid NEW (--pem FILE | --secret-file FILE | --generate-secret) [--retire OLD]
           adds NEW; with --retire, disables OLD in the same step (omit it to keep both during an overlap)

--alg defaults to the PEM key's type (RSA: RS256, EC P-256: ES256, Ed25519: EdDSA); HS256
with --secret-file or --generate-secret (32 bytes or more; a generated secret is printed once).
`

func runKey(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return subcommand(ctx, "key", map[string]func(context.Context, []string, io.Writer, io.Writer) error{
		"add":     func(ctx context.Context, a []string, o, e io.Writer) error { return keyAdd(ctx, a, o, e, false) },
		"rotate":  func(ctx context.Context, a []string, o, e io.Writer) error { return keyAdd(ctx, a, o, e, true) },
		"list":    keyList,
		"disable": func(ctx context.Context, a []string, o, e io.Writer) error { return keyEnable(ctx, a, o, e, false) },
		"enable":  func(ctx context.Context, a []string, o, e io.Writer) error { return keyEnable(ctx, a, o, e, true) },
	}, keyUsage, args, stdout, stderr)
}

// publicKeyPEM returns the public key PEM of a PEM file holding a public or
// a private key (so operators can point at either), and its algorithm.
func publicKeyPEM(b []byte) (string, string, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return "", "", errors.New("not a PEM file")
	}
	var pub any
	switch block.Type {
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return "", "", err
		}
		pub = k
	case "RSA PUBLIC KEY":
		k, err := x509.ParsePKCS1PublicKey(block.Bytes)
		if err != nil {
			return "", "", err
		}
		pub = k
	default:
		return "", "", fmt.Errorf("PEM block %q: give the public key (openssl pkey -in private.key -pubout)", block.Type)
	}
	alg, err := algorithmOf(pub)
	if err != nil {
		return "", "", err
	}
	return string(b), alg, nil
}

func keyAdd(ctx context.Context, args []string, stdout, stderr io.Writer, rotate bool) error {
	fs := newFlags("key add", stderr, keyUsage)
	slug := fs.String("partner", "", "partner slug")
	kid := fs.String("kid", "", "key id (the JWT header's kid)")
	alg := fs.String("alg", "", "RS256, ES256, EdDSA or HS256 (default: from the key)")
	pemFile := fs.String("pem", "", "public key PEM file")
	secretFile := fs.String("secret-file", "", "HS256 secret file (- for stdin)")
	gen := fs.Bool("generate-secret", false, "HS256: generate a secret and print it once")
	desc := fs.String("description", "", "what this key is for")
	jwks := fs.String("jwks-url", "", "the partner's JWKS URL instead of a key")
	retire := fs.String("retire", "", "rotate: kid of the key to disable")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o, p, closeDB, err := openPartner(ctx, stderr, *slug)
	if err != nil {
		return err
	}
	defer closeDB()
	if *jwks != "" && !rotate {
		if _, err := o.partners.UpdateControls(ctx, o.db.Bun, p.ID, partner.Controls{JWKSURL: jwks}); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s's consumer tokens may now also be signed by the keys at %s\n", p.Slug, *jwks)
		return nil
	}
	params := partner.AddConsumerKeyParams{Kid: *kid, Description: *desc, Algorithm: *alg}
	var printSecret string
	switch {
	case *pemFile != "":
		b, err := os.ReadFile(*pemFile)
		if err != nil {
			return err
		}
		pemText, keyAlg, err := publicKeyPEM(b)
		if err != nil {
			return err
		}
		if params.Algorithm == "" {
			params.Algorithm = keyAlg
		}
		params.PublicKeyPEM = pemText
	case *secretFile != "" || *gen:
		if params.Algorithm == "" {
			params.Algorithm = partner.AlgHS256
		}
		if *gen {
			printSecret = partner.NewSecret()
			params.Secret = []byte(printSecret)
		} else if params.Secret, err = readSecretFile(*secretFile); err != nil {
			return err
		}
	default:
		return errors.New("give --pem, --secret-file or --generate-secret (or --jwks-url)")
	}
	err = o.db.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := o.partners.UpsertConsumerKey(ctx, tx, p.ID, params); err != nil {
			return err
		}
		if rotate && *retire != "" {
			return o.partners.SetConsumerKeyEnabled(ctx, tx, p.ID, *retire, false)
		}
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "key %s (%s) enabled for %s\n", params.Kid, params.Algorithm, p.Slug)
	if rotate && *retire != "" {
		fmt.Fprintf(stdout, "key %s disabled\n", *retire)
	}
	if printSecret != "" {
		fmt.Fprintf(stdout, "HS256 secret (shown once): %s\n", printSecret)
	}
	return nil
}

func keyList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("key list", stderr, keyUsage)
	slug := fs.String("partner", "", "partner slug")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o, p, closeDB, err := openPartner(ctx, stderr, *slug)
	if err != nil {
		return err
	}
	defer closeDB()
	keys, err := o.partners.ListConsumerKeys(ctx, o.db.Bun, p.ID)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tALG\tSTATE\tCREATED\tDESCRIPTION")
	for _, k := range keys {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.Kid, k.Algorithm, onOff(k.Enabled), k.CreatedAt.UTC().Format(time.RFC3339), k.Description)
	}
	if p.JWKSURL != nil {
		fmt.Fprintf(tw, "(jwks)\t-\tenabled\t-\t%s\n", *p.JWKSURL)
	}
	return tw.Flush()
}

func keyEnable(ctx context.Context, args []string, stdout, stderr io.Writer, enabled bool) error {
	fs := newFlags("key enable", stderr, keyUsage)
	slug := fs.String("partner", "", "partner slug")
	kid := fs.String("kid", "", "key id")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o, p, closeDB, err := openPartner(ctx, stderr, *slug)
	if err != nil {
		return err
	}
	defer closeDB()
	if err := o.partners.SetConsumerKeyEnabled(ctx, o.db.Bun, p.ID, *kid, enabled); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "key %s %s\n", *kid, onOff(enabled))
	return nil
}
