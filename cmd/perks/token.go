package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/urfave/cli/v3"

	"github.com/perkshq/perks/internal/demo"
	"github.com/perkshq/perks/internal/partner"
)

func tokenCommand() *cli.Command {
	return &cli.Command{
		Name:  "token",
		Usage: "development consumer tokens",
		Commands: []*cli.Command{{
			Name:  "mint",
			Usage: "sign a consumer token for a user of a partner",
			Description: "Signs with <secrets dir>/<partner>.private.pem (the demo partners' key) unless --key\n" +
				"names another RSA, EC P-256 or Ed25519 PKCS#8 key. The token carries the partner's\n" +
				"issuer as iss when it has one.",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "partner", Value: "acme", Usage: "partner `SLUG`"},
				&cli.StringFlag{Name: "sub", Usage: "the partner's external user id (required)"},
				&cli.DurationFlag{Name: "ttl", Value: time.Hour, Usage: "token lifetime"},
				&cli.BoolFlag{Name: "no-exp", Usage: "omit exp (only keys set with --allow-no-exp accept it)"},
				&cli.StringFlag{Name: "email", Usage: "email claim"},
				&cli.StringFlag{Name: "display-name", Usage: "displayName claim"},
				&cli.StringFlag{Name: "locale", Usage: "locale claim, a BCP 47 tag such as fr-FR (the webview's language)"},
				&cli.StringFlag{Name: "key", Usage: "PKCS#8 private key `FILE`, RSA, EC P-256 or Ed25519 (default: <secrets dir>/<partner>.private.pem)"},
				&cli.StringFlag{Name: "kid", Usage: "kid header (default: none; the partner is found by iss)"},
				&cli.BoolFlag{Name: "webview", Usage: "print the webview URL to open (PERKS_PUBLIC_BASE_URL/consumer#token=...) instead of the bare token"},
			},
			Action: tokenMint,
		}},
	}
}

func tokenMint(ctx context.Context, cmd *cli.Command) error {
	stdout := cmd.Root().Writer
	slug, sub, ttl, email, displayName := cmd.String("partner"), cmd.String("sub"), cmd.Duration("ttl"), cmd.String("email"), cmd.String("display-name")
	keyPath, kid := cmd.String("key"), cmd.String("kid")
	if slug == "" {
		return errors.New("--partner is required")
	}
	if sub == "" {
		return errors.New("--sub is required")
	}
	o, p, closeDB, err := openPartner(ctx, cmd, withKeys)
	if err != nil {
		return err
	}
	defer closeDB()
	cfg := o.cfg
	if keyPath == "" {
		keyPath = filepath.Join(cfg.SecretsDir, slug+".private.pem")
	}
	pemBytes, err := os.ReadFile(keyPath)
	if err != nil {
		return err
	}
	key, err := demo.ParsePrivateKey(pemBytes)
	if err != nil {
		return err
	}
	now := time.Now()
	claims := jwt.MapClaims{"sub": sub, "iat": now.Unix()}
	if !cmd.Bool("no-exp") {
		claims["exp"] = now.Add(ttl).Unix()
	}
	if p.Issuer != nil {
		claims["iss"] = *p.Issuer
	}
	if email != "" {
		claims["email"] = email
	}
	if displayName != "" {
		claims["displayName"] = displayName
	}
	if l := cmd.String("locale"); l != "" {
		claims["locale"] = l
	}
	alg, err := partner.AlgorithmOf(key)
	if err != nil {
		return err
	}
	t := jwt.NewWithClaims(jwt.GetSigningMethod(alg), claims)
	if kid != "" {
		t.Header["kid"] = kid
	}
	tok, err := t.SignedString(key)
	if err != nil {
		return fmt.Errorf("sign token: %w", err)
	}
	if cmd.Bool("webview") {
		tok = strings.TrimRight(cfg.PublicBaseURL, "/") + "/consumer#token=" + tok
	}
	fmt.Fprint(stdout, tok)
	if f, ok := stdout.(*os.File); ok && isTerminal(f) {
		fmt.Fprintln(stdout)
	}
	return nil
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
