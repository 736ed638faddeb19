package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/uptrace/bun"
	"github.com/urfave/cli/v3"

	"github.com/perkshq/perks/internal/partner"
)

const keyDescription = `Keys that verify a partner's consumer JWTs (several per partner; the token's kid
selects one). add takes one of --pem FILE (the public key PEM: openssl pkey
-in private.key -pubout), --secret-file FILE or --generate-secret (HS256,
32 bytes or more; a generated secret is printed once), or --jwks-url URL (keys
the partner publishes, fetched and cached). --alg defaults to the PEM key's type
(RSA: RS256, EC P-256: ES256, Ed25519: EdDSA), HS256 for secrets.

Tokens must carry exp unless the key allows otherwise: --allow-no-exp
--max-age 24h accepts tokens without exp (seed 003 calls it optional) when their
iat is at most that old; iat is then required.

A kid another partner also uses does not resolve the partner by itself: tokens
with that kid must then carry iss or be sent with X-Partner-Slug (add warns).`

func keyMaterialFlags() []cli.Flag {
	return []cli.Flag{
		partnerFlag(),
		&cli.StringFlag{Name: "kid", Usage: "key id (the JWT header's kid)"},
		&cli.StringFlag{Name: "alg", Usage: "`RS256|ES256|EdDSA|HS256` (default: from the key)"},
		&cli.StringFlag{Name: "pem", Usage: "public key PEM `FILE`"},
		&cli.StringFlag{Name: "secret-file", Usage: "HS256 secret `FILE` (- for stdin)"},
		&cli.BoolFlag{Name: "generate-secret", Usage: "HS256: generate a secret and print it once"},
		&cli.StringFlag{Name: "description", Usage: "what this key is for"},
		&cli.BoolFlag{Name: "allow-no-exp", Usage: "accept tokens without exp, up to --max-age after their iat"},
		&cli.DurationFlag{Name: "max-age", Usage: "with --allow-no-exp: oldest accepted iat (default: the partner's max token lifetime)"},
	}
}

func keyCommand() *cli.Command {
	return &cli.Command{
		Name:        "key",
		Usage:       "consumer token keys: add, list, set, disable, enable, rotate",
		Description: keyDescription,
		Commands: []*cli.Command{
			{
				Name:   "add",
				Usage:  "register a key (replacing the kid's material) or a JWKS URL",
				Flags:  append(keyMaterialFlags(), &cli.StringFlag{Name: "jwks-url", Usage: "the partner's JWKS `URL` instead of a key"}),
				Action: func(ctx context.Context, cmd *cli.Command) error { return keyAdd(ctx, cmd, false) },
			},
			{
				Name:   "rotate",
				Usage:  "add --kid NEW; with --retire OLD, disable OLD in the same step (omit it to keep both during an overlap)",
				Flags:  append(keyMaterialFlags(), &cli.StringFlag{Name: "retire", Usage: "`KID` of the key to disable"}),
				Action: func(ctx context.Context, cmd *cli.Command) error { return keyAdd(ctx, cmd, true) },
			},
			{Name: "list", Usage: "list the partner's keys", Flags: []cli.Flag{partnerFlag(), jsonFlag()}, Action: keyList},
			{
				Name:  "set",
				Usage: "change a key's description or whether tokens without exp are accepted",
				Flags: []cli.Flag{
					partnerFlag(),
					&cli.StringFlag{Name: "kid", Usage: "key id"},
					&cli.StringFlag{Name: "description", Usage: "what this key is for"},
					&cli.BoolFlag{Name: "allow-no-exp", Usage: "accept tokens without exp (--allow-no-exp=false: exp required again)"},
					&cli.DurationFlag{Name: "max-age", Usage: "with --allow-no-exp: oldest accepted iat (default: the partner's max token lifetime)"},
				},
				Action: keySet,
			},
			{
				Name: "disable", Usage: "disable a key (stops verifying with the next request)",
				Flags:  []cli.Flag{partnerFlag(), &cli.StringFlag{Name: "kid", Usage: "key id"}},
				Action: func(ctx context.Context, cmd *cli.Command) error { return keyEnable(ctx, cmd, false) },
			},
			{
				Name: "enable", Usage: "enable a key",
				Flags:  []cli.Flag{partnerFlag(), &cli.StringFlag{Name: "kid", Usage: "key id"}},
				Action: func(ctx context.Context, cmd *cli.Command) error { return keyEnable(ctx, cmd, true) },
			},
		},
	}
}

// noExpMaxAge reads --allow-no-exp and --max-age: 0 when tokens must carry
// exp; the maximum age from iat otherwise (the partner's maximum token
// lifetime unless --max-age says less).
func noExpMaxAge(cmd *cli.Command, p *partner.Partner) (time.Duration, error) {
	if !cmd.Bool("allow-no-exp") {
		if cmd.IsSet("max-age") {
			return 0, errors.New("--max-age only applies with --allow-no-exp")
		}
		return 0, nil
	}
	age := p.MaxTokenLifetime()
	if cmd.IsSet("max-age") {
		age = cmd.Duration("max-age")
	}
	if age < time.Second {
		return 0, errors.New("--max-age must be at least 1s")
	}
	return age, nil
}

func keyAdd(ctx context.Context, cmd *cli.Command, rotate bool) error {
	stdout, stderr := cmd.Root().Writer, cmd.Root().ErrWriter
	kid, alg, pemFile, secretFile, gen, desc := cmd.String("kid"), cmd.String("alg"), cmd.String("pem"), cmd.String("secret-file"), cmd.Bool("generate-secret"), cmd.String("description")
	jwks, retire := cmd.String("jwks-url"), cmd.String("retire")
	o, p, closeDB, err := openPartner(ctx, cmd, withKeys)
	if err != nil {
		return err
	}
	defer closeDB()
	if jwks != "" && !rotate {
		if _, err := o.svc.Partners.UpdateControls(ctx, o.db.Bun, p.ID, partner.Controls{JWKSURL: &jwks}); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s's consumer tokens may now also be signed by the keys at %s\n", p.Slug, jwks)
		return nil
	}
	maxAge, err := noExpMaxAge(cmd, p)
	if err != nil {
		return err
	}
	params := partner.AddConsumerKeyParams{Kid: kid, Description: desc, Algorithm: alg, NoExpMaxAge: maxAge}
	var printSecret string
	switch {
	case pemFile != "":
		b, err := os.ReadFile(pemFile)
		if err != nil {
			return err
		}
		pemText, keyAlg, err := partner.PublicKeyFilePEM(b)
		if err != nil {
			return err
		}
		if params.Algorithm == "" {
			params.Algorithm = keyAlg
		}
		params.PublicKeyPEM = pemText
	case secretFile != "" || gen:
		if params.Algorithm == "" {
			params.Algorithm = partner.AlgHS256
		}
		if gen {
			printSecret = partner.NewSecret()
			params.Secret = []byte(printSecret)
		} else if params.Secret, err = readSecretFile(secretFile); err != nil {
			return err
		}
	default:
		return errors.New("give --pem, --secret-file or --generate-secret (or --jwks-url)")
	}
	err = o.db.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := o.svc.Partners.UpsertConsumerKey(ctx, tx, p.ID, params); err != nil {
			return err
		}
		if rotate && retire != "" {
			return o.svc.Partners.SetConsumerKeyEnabled(ctx, tx, p.ID, retire, false)
		}
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "key %s (%s) enabled for %s\n", params.Kid, params.Algorithm, p.Slug)
	if maxAge > 0 {
		fmt.Fprintf(stdout, "tokens without exp are accepted up to %s after their iat\n", maxAge)
	}
	if err := warnSharedKid(ctx, o, p, params.Kid, stderr); err != nil {
		return err
	}
	if rotate && retire != "" {
		fmt.Fprintf(stdout, "key %s disabled\n", retire)
	}
	if printSecret != "" {
		fmt.Fprintf(stdout, "HS256 secret (shown once): %s\n", printSecret)
	}
	return nil
}

// warnSharedKid warns when another partner has an enabled key with kid:
// such tokens no longer find their partner by kid alone. The other partner
// is not named (one tenant never learns about another).
func warnSharedKid(ctx context.Context, o *operator, p *partner.Partner, kid string, stderr io.Writer) error {
	shared, err := o.svc.Partners.KidUsedByOtherPartner(ctx, o.db.Bun, p.ID, kid)
	if err != nil {
		return err
	}
	if shared {
		fmt.Fprintf(stderr, "warning: kid %s is also used by another partner; tokens without iss or X-Partner-Slug will not resolve to you\n", kid)
	}
	return nil
}

func keyList(ctx context.Context, cmd *cli.Command) error {
	stdout := cmd.Root().Writer
	o, p, closeDB, err := openPartner(ctx, cmd, withKeys)
	if err != nil {
		return err
	}
	defer closeDB()
	keys, err := o.svc.Partners.ListConsumerKeys(ctx, o.db.Bun, p.ID)
	if err != nil {
		return err
	}
	if cmd.Bool("json") {
		type row struct {
			Kid         string    `json:"kid"`
			Algorithm   string    `json:"algorithm"`
			Enabled     bool      `json:"enabled"`
			NoExpMaxAge string    `json:"noExpMaxAge,omitempty"`
			CreatedAt   time.Time `json:"createdAt"`
			Description string    `json:"description"`
		}
		type list struct {
			Keys    []row   `json:"keys"`
			JWKSURL *string `json:"jwksUrl"`
		}
		out := list{Keys: make([]row, 0, len(keys)), JWKSURL: p.JWKSURL}
		for _, k := range keys {
			r := row{Kid: k.Kid, Algorithm: k.Algorithm, Enabled: k.Enabled, CreatedAt: k.CreatedAt.UTC(), Description: k.Description}
			if a := k.NoExpMaxAge(); a > 0 {
				r.NoExpMaxAge = a.String()
			}
			out.Keys = append(out.Keys, r)
		}
		return printJSON(stdout, out)
	}
	tw := newTable(stdout, "KID", "ALG", "STATE", "EXP", "CREATED", "DESCRIPTION")
	for _, k := range keys {
		exp := "required"
		if a := k.NoExpMaxAge(); a > 0 {
			exp = "optional (iat within " + a.String() + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.Kid, k.Algorithm, onOff(k.Enabled), exp, k.CreatedAt.UTC().Format(time.RFC3339), k.Description)
	}
	if p.JWKSURL != nil {
		fmt.Fprintf(tw, "(jwks)\t-\t%s\trequired\t-\t%s\n", onOff(!p.JWKSDisabled), *p.JWKSURL)
	}
	return tw.Flush()
}

func keySet(ctx context.Context, cmd *cli.Command) error {
	stdout := cmd.Root().Writer
	kid := cmd.String("kid")
	if kid == "" {
		return errors.New("--kid is required")
	}
	o, p, closeDB, err := openPartner(ctx, cmd, withKeys)
	if err != nil {
		return err
	}
	defer closeDB()
	var ch partner.ConsumerKeyChanges
	if cmd.IsSet("description") {
		d := cmd.String("description")
		ch.Description = &d
	}
	if cmd.IsSet("allow-no-exp") || cmd.IsSet("max-age") {
		age, err := noExpMaxAge(cmd, p)
		if err != nil {
			return err
		}
		ch.NoExpMaxAge = &age
	}
	k, err := o.svc.Partners.UpdateConsumerKey(ctx, o.db.Bun, p.ID, kid, ch)
	if err != nil {
		return err
	}
	exp := "tokens must carry exp"
	if a := k.NoExpMaxAge(); a > 0 {
		exp = "tokens without exp are accepted up to " + a.String() + " after their iat"
	}
	fmt.Fprintf(stdout, "key %s (%s, %s): %s\n", k.Kid, k.Algorithm, onOff(k.Enabled), exp)
	return nil
}

func keyEnable(ctx context.Context, cmd *cli.Command, enabled bool) error {
	stdout, stderr := cmd.Root().Writer, cmd.Root().ErrWriter
	kid := cmd.String("kid")
	o, p, closeDB, err := openPartner(ctx, cmd, withKeys)
	if err != nil {
		return err
	}
	defer closeDB()
	if err := o.svc.Partners.SetConsumerKeyEnabled(ctx, o.db.Bun, p.ID, kid, enabled); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "key %s %s\n", kid, onOff(enabled))
	if enabled {
		return warnSharedKid(ctx, o, p, kid, stderr)
	}
	return nil
}
