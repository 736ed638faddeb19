package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/perkshq/perks/internal/app"
	"github.com/perkshq/perks/internal/demo"
	"github.com/perkshq/perks/internal/partner"
)

func runToken(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "mint" {
		fmt.Fprintln(stderr, "Usage: perks token mint --partner acme --sub usr_demo_001 [--ttl 1h] [--email ...] [--display-name ...] [--key PEM] [--kid K] [--webview]")
		return errUsage
	}
	fs := flag.NewFlagSet("token mint", flag.ContinueOnError)
	fs.SetOutput(stderr)
	slug := fs.String("partner", "acme", "partner slug")
	sub := fs.String("sub", "", "the partner's external user id (required)")
	ttl := fs.Duration("ttl", time.Hour, "token lifetime")
	email := fs.String("email", "", "email claim")
	displayName := fs.String("display-name", "", "displayName claim")
	keyPath := fs.String("key", "", "PKCS#8 private key, RSA, EC P-256 or Ed25519 (default: <secrets dir>/<partner>.private.pem)")
	kid := fs.String("kid", "", "kid header (default: none; the partner is found by iss)")
	webview := fs.Bool("webview", false, "print the webview URL to open (PERKS_PUBLIC_BASE_URL/consumer#token=...) instead of the bare token")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *sub == "" {
		return errors.New("--sub is required")
	}
	cfg, db, closeDB, err := open(ctx, stderr)
	if err != nil {
		return err
	}
	defer closeDB()
	keys, err := app.LoadKeyringFor(ctx, cfg, newLogger(io.Discard, "error"), db.Bun)
	if err != nil {
		return err
	}
	p, err := partner.NewService(keys).BySlug(ctx, db.Bun, *slug)
	if err != nil {
		return fmt.Errorf("partner %s: %w", *slug, err)
	}
	if *keyPath == "" {
		*keyPath = filepath.Join(cfg.SecretsDir, *slug+".private.pem")
	}
	pemBytes, err := os.ReadFile(*keyPath)
	if err != nil {
		return err
	}
	key, err := demo.ParsePrivateKey(pemBytes)
	if err != nil {
		return err
	}
	now := time.Now()
	claims := jwt.MapClaims{"sub": *sub, "iat": now.Unix(), "exp": now.Add(*ttl).Unix()}
	if p.Issuer != nil {
		claims["iss"] = *p.Issuer
	}
	if *email != "" {
		claims["email"] = *email
	}
	if *displayName != "" {
		claims["displayName"] = *displayName
	}
	alg, err := algorithmOf(key)
	if err != nil {
		return err
	}
	t := jwt.NewWithClaims(jwt.GetSigningMethod(alg), claims)
	if *kid != "" {
		t.Header["kid"] = *kid
	}
	tok, err := t.SignedString(key)
	if err != nil {
		return fmt.Errorf("sign token: %w", err)
	}
	if *webview {
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
