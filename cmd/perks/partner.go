package main

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"github.com/urfave/cli/v3"

	"github.com/perkshq/perks/internal/config"
	"github.com/perkshq/perks/internal/partner"
)

const partnerDescription = `Partners, their controls and credentials. Secrets, API keys and generated
private keys are printed once and never stored in clear.`

func partnerCommand() *cli.Command {
	return &cli.Command{
		Name:        "partner",
		Usage:       "partners, their controls and credentials",
		Description: partnerDescription,
		Commands: []*cli.Command{
			{
				Name:  "create",
				Usage: "create a partner",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "partner", Aliases: []string{"slug"}, Usage: "the new partner's URL-safe `SLUG`"},
					&cli.StringFlag{Name: "name", Usage: "name"},
					&cli.StringFlag{Name: "display-name", Usage: "name shown to users"},
					&cli.StringFlag{Name: "issuer", Usage: "iss of the partner's consumer tokens (`URL`)"},
					&cli.StringFlag{Name: "program", Usage: "program name"},
					&cli.StringFlag{Name: "currency", Usage: "points currency name (default points)"},
					&cli.BoolFlag{Name: "pending", Usage: "create it pending, as the console does: no API access until `perks partner approve`"},
				},
				Action: partnerCreate,
			},
			// approve, suspend, resume (admin.go)
			{Name: "list", Usage: "list the partners", Flags: []cli.Flag{jsonFlag()}, Action: partnerList},
			{Name: "show", Usage: "show a partner's controls", Flags: []cli.Flag{partnerFlag()}, Action: partnerShow},
			sandboxCommand(),
			{
				Name:  "set",
				Usage: "change a partner's controls (only the flags given change)",
				Description: "Only the flags given change. An empty value clears origins, schemes, audience, issuer,\n" +
					"jwks-url and frame-ancestors; rate limits are per minute across replicas, 0 = unlimited,\n" +
					"`default` = the configured default; frame-ancestors says who may frame\n" +
					"/consumer?partner=S (default 'none').",
				Flags: []cli.Flag{
					partnerFlag(),
					&cli.BoolFlag{Name: "api-enabled", Usage: "API access on or off (partner and consumer calls): --api-enabled=false"},
					&cli.BoolFlag{Name: "require-hmac-v2", Usage: "refuse HMAC requests without a v2 signature"},
					&cli.BoolFlag{Name: "require-request-binding", Usage: "refuse request JWTs without htm and htu claims"},
					&cli.StringFlag{Name: "allowed-origins", Usage: "comma-separated IPs, CIDRs and host names; empty = any"},
					&cli.StringFlag{Name: "schemes", Usage: "comma-separated schemes the partner may use (hmac,ed25519,request_jwt); empty = any"},
					&cli.StringFlag{Name: "rate-limit", Usage: "back-end requests per minute, across replicas (`N|default`, 0 = unlimited)"},
					&cli.StringFlag{Name: "rate-limit-burst", Usage: "back-end burst (`N|default`)"},
					&cli.StringFlag{Name: "consumer-rate-limit", Usage: "consumer requests per minute, across replicas (`N|default`, 0 = unlimited)"},
					&cli.StringFlag{Name: "consumer-rate-limit-burst", Usage: "consumer burst (`N|default`)"},
					&cli.StringFlag{Name: "audience", Usage: "required aud of consumer tokens; empty = none"},
					&cli.DurationFlag{Name: "max-token-lifetime", Usage: "longest consumer token lifetime (exp - iat), e.g. 168h"},
					&cli.StringFlag{Name: "issuer", Usage: "iss of consumer tokens; empty = none"},
					&cli.StringFlag{Name: "jwks-url", Usage: "JWKS URL of consumer token keys; empty = none"},
					&cli.StringFlag{Name: "frame-ancestors", Usage: "comma-separated CSP sources that may frame the webview ('self', https://host); empty = none"},
					&cli.StringFlag{Name: "cors-origins", Usage: "comma-separated exact browser origins that may call /graphql (https://app.example.com); empty = none"},
				},
				Action: partnerSet,
			},
			{
				Name:  "credential",
				Usage: "the partner's API credentials (hmac, ed25519, request_jwt)",
				Commands: []*cli.Command{
					{
						Name:  "create",
						Usage: "create a credential; its secret or private key is printed once",
						Flags: []cli.Flag{
							partnerFlag(),
							&cli.StringFlag{Name: "kind", Usage: "`hmac|ed25519|request_jwt`"},
							&cli.StringFlag{Name: "description", Usage: "what this credential is for"},
							&cli.StringFlag{Name: "public-key", Usage: "ed25519: register this public key (`FILE`, PEM or base64) instead of generating a pair"},
							&cli.StringFlag{Name: "secret-file", Usage: "hmac/request_jwt: use this secret (`FILE`, - for stdin) instead of generating one"},
						},
						Action: credentialCreate,
					},
					{Name: "list", Usage: "list the partner's credentials", Flags: []cli.Flag{partnerFlag(), jsonFlag()}, Action: credentialList},
					{
						Name: "disable", Usage: "disable a credential",
						Flags:  []cli.Flag{partnerFlag(), &cli.StringFlag{Name: "id", Usage: "credential `UUID`"}},
						Action: func(ctx context.Context, cmd *cli.Command) error { return credentialEnable(ctx, cmd, false) },
					},
					{
						Name: "enable", Usage: "enable a credential",
						Flags:  []cli.Flag{partnerFlag(), &cli.StringFlag{Name: "id", Usage: "credential `UUID`"}},
						Action: func(ctx context.Context, cmd *cli.Command) error { return credentialEnable(ctx, cmd, true) },
					},
				},
			},
		},
	}
}

func partnerCreate(ctx context.Context, cmd *cli.Command) error {
	stdout := cmd.Root().Writer
	slug, err := requirePartner(cmd)
	if err != nil {
		return err
	}
	name, display, issuer, program, currency := cmd.String("name"), cmd.String("display-name"), cmd.String("issuer"), cmd.String("program"), cmd.String("currency")
	o, closeDB, err := openOperator(ctx, cmd, withKeys)
	if err != nil {
		return err
	}
	defer closeDB()
	if _, err := o.svc.Partners.BySlug(ctx, o.db.Bun, slug); err == nil {
		return fmt.Errorf("partner %s already exists (use `perks partner set`)", slug)
	}
	p, err := o.svc.Partners.Upsert(ctx, o.db.Bun, partner.CreateParams{
		Slug: slug, Name: name, DisplayName: display, ProgramName: program, CurrencyName: currency, Issuer: issuer,
		Status: pendingIf(cmd.Bool("pending")),
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "created partner %s (%s), %s\n", p.Slug, p.ID, p.Status)
	fmt.Fprintln(stdout, "next: `perks partner credential create --partner "+p.Slug+" --kind hmac|ed25519|request_jwt` and `perks key add`")
	return nil
}

func partnerList(ctx context.Context, cmd *cli.Command) error {
	stdout := cmd.Root().Writer
	o, closeDB, err := openOperator(ctx, cmd, withKeys)
	if err != nil {
		return err
	}
	defer closeDB()
	ps, err := o.svc.Partners.List(ctx, o.db.Bun)
	if err != nil {
		return err
	}
	if cmd.Bool("json") {
		type row struct {
			Slug           string   `json:"slug"`
			ID             string   `json:"id"`
			Name           string   `json:"name"`
			Status         string   `json:"status"`
			APIEnabled     bool     `json:"apiEnabled"`
			AllowedSchemes []string `json:"allowedSchemes"`
		}
		out := make([]row, 0, len(ps))
		for _, p := range ps {
			out = append(out, row{p.Slug, p.ID.String(), p.Name, p.Status, p.APIEnabled, orEmpty(p.AllowedSchemes)})
		}
		return printJSON(stdout, out)
	}
	tw := newTable(stdout, "SLUG", "ID", "NAME", "STATUS", "API", "SCHEMES")
	for _, p := range ps {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p.Slug, p.ID, p.Name, p.Status, onOff(p.APIEnabled), orAll(p.AllowedSchemes))
	}
	return tw.Flush()
}

// frameAncestorsText is the CSP frame-ancestors value of a partner's list.
func frameAncestorsText(v []string) string {
	if len(v) == 0 {
		return "'none'"
	}
	return strings.Join(v, " ")
}

func limitText(v *int, def int) string {
	switch {
	case v == nil:
		return fmt.Sprintf("default (%d)", def)
	case *v == 0:
		return "unlimited"
	}
	return strconv.Itoa(*v)
}

func partnerShow(ctx context.Context, cmd *cli.Command) error {
	stdout := cmd.Root().Writer
	o, p, closeDB, err := openPartner(ctx, cmd, withKeys)
	if err != nil {
		return err
	}
	defer closeDB()
	printPartner(stdout, o.cfg, p)
	return nil
}

func printPartner(w io.Writer, cfg *config.Config, p *partner.Partner) {
	str := func(s *string) string {
		if s == nil || *s == "" {
			return "(none)"
		}
		return *s
	}
	aud := p.Audience
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "slug:\t%s\n", p.Slug)
	fmt.Fprintf(tw, "id:\t%s\n", p.ID)
	fmt.Fprintf(tw, "name:\t%s (%s)\n", p.Name, p.DisplayName)
	fmt.Fprintf(tw, "status:\t%s\n", p.Status)
	fmt.Fprintf(tw, "api access:\t%s\n", onOff(p.APIEnabled))
	fmt.Fprintf(tw, "schemes:\t%s\n", orAll(p.AllowedSchemes))
	fmt.Fprintf(tw, "require hmac v2:\t%v\n", p.RequireHMACV2)
	fmt.Fprintf(tw, "require request binding:\t%v\n", p.RequireRequestBinding)
	fmt.Fprintf(tw, "allowed origins:\t%s\n", orAll(p.AllowedOrigins))
	fmt.Fprintf(tw, "rate limit/min:\t%s (burst %s)\n", limitText(p.RateLimitPerMinute, cfg.RateLimitPerMinute), limitText(p.RateLimitBurst, cfg.RateLimitBurst))
	fmt.Fprintf(tw, "consumer rate limit/min:\t%s (burst %s)\n", limitText(p.ConsumerRateLimitPerMinute, cfg.ConsumerRateLimitPerMinute), limitText(p.ConsumerRateLimitBurst, cfg.ConsumerRateLimitBurst))
	fmt.Fprintf(tw, "issuer:\t%s\n", str(p.Issuer))
	fmt.Fprintf(tw, "audience:\t%s\n", str(&aud))
	fmt.Fprintf(tw, "max token lifetime:\t%s\n", p.MaxTokenLifetime())
	fmt.Fprintf(tw, "jwks url:\t%s\n", str(p.JWKSURL))
	fmt.Fprintf(tw, "frame ancestors:\t%s\n", frameAncestorsText(p.FrameAncestors))
	fmt.Fprintf(tw, "cors origins:\t%s\n", orNone(p.CORSOrigins))
	tw.Flush()
}

// limitFlag parses "N" or "default" (-1, meaning the configured default).
func limitFlag(v string) (int, error) {
	if v == "default" {
		return -1, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q: want a number of requests per minute, 0 for unlimited, or default", v)
	}
	return n, nil
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	if out == nil {
		out = []string{}
	}
	return out
}

func partnerSet(ctx context.Context, cmd *cli.Command) error {
	stdout := cmd.Root().Writer
	var c partner.Controls
	var ferr error
	limit := func(dst **int, v string) {
		n, err := limitFlag(v)
		if err != nil {
			ferr = err
		}
		*dst = &n
	}
	str := func(name string) *string {
		v := cmd.String(name)
		return &v
	}
	list := func(name string) *[]string {
		l := splitList(cmd.String(name))
		return &l
	}
	// Only the flags given change.
	for _, name := range cmd.LocalFlagNames() {
		switch name {
		case "api-enabled":
			v := cmd.Bool(name)
			c.APIEnabled = &v
		case "require-hmac-v2":
			v := cmd.Bool(name)
			c.RequireHMACV2 = &v
		case "require-request-binding":
			v := cmd.Bool(name)
			c.RequireRequestBinding = &v
		case "allowed-origins":
			c.AllowedOrigins = list(name)
		case "schemes":
			c.AllowedSchemes = list(name)
		case "rate-limit":
			limit(&c.RateLimitPerMinute, cmd.String(name))
		case "rate-limit-burst":
			limit(&c.RateLimitBurst, cmd.String(name))
		case "consumer-rate-limit":
			limit(&c.ConsumerRateLimitPerMinute, cmd.String(name))
		case "consumer-rate-limit-burst":
			limit(&c.ConsumerRateLimitBurst, cmd.String(name))
		case "audience":
			c.Audience = str(name)
		case "max-token-lifetime":
			s := int(cmd.Duration(name).Seconds())
			c.MaxTokenLifetimeSeconds = &s
		case "issuer":
			c.Issuer = str(name)
		case "jwks-url":
			c.JWKSURL = str(name)
		case "frame-ancestors":
			c.FrameAncestors = list(name)
		case "cors-origins":
			c.CORSOrigins = list(name)
		}
	}
	if ferr != nil {
		return ferr
	}
	o, p, closeDB, err := openPartner(ctx, cmd, withKeys)
	if err != nil {
		return err
	}
	defer closeDB()
	p, err = o.svc.Partners.UpdateControls(ctx, o.db.Bun, p.ID, c)
	if err != nil {
		return err
	}
	printPartner(stdout, o.cfg, p)
	return nil
}

// readSecretFile reads a secret from a file ("-" is stdin), trimming one
// trailing newline.
func readSecretFile(path string) ([]byte, error) {
	var b []byte
	var err error
	if path == "-" {
		b, err = io.ReadAll(io.LimitReader(os.Stdin, 1<<16))
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, err
	}
	return []byte(strings.TrimRight(string(b), "\r\n")), nil
}

func credentialCreate(ctx context.Context, cmd *cli.Command) error {
	stdout := cmd.Root().Writer
	kind, desc, pubFile, secretFile := cmd.String("kind"), cmd.String("description"), cmd.String("public-key"), cmd.String("secret-file")
	o, p, closeDB, err := openPartner(ctx, cmd, withKeys)
	if err != nil {
		return err
	}
	defer closeDB()
	switch kind {
	case partner.KindHMAC, partner.KindRequestJWT:
		secret := []byte(partner.NewSecret())
		if secretFile != "" {
			if secret, err = readSecretFile(secretFile); err != nil {
				return err
			}
		}
		c, err := o.svc.Partners.AddSharedSecret(ctx, o.db.Bun, p.ID, kind, desc, secret)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "created %s credential %s for %s\n", c.Kind, c.ID, p.Slug)
		if kind == partner.KindRequestJWT {
			fmt.Fprintf(stdout, "partner id (iss): %s\n", p.ID)
		}
		if secretFile == "" {
			fmt.Fprintf(stdout, "secret (shown once, store it in your secret manager): %s\n", secret)
		}
	case partner.KindEd25519:
		var pub ed25519.PublicKey
		if pubFile != "" {
			b, err := os.ReadFile(pubFile)
			if err != nil {
				return err
			}
			if pub, err = partner.ParseEd25519PublicKey(string(b)); err != nil {
				return err
			}
		}
		c, err := o.svc.Partners.CreateEd25519Credential(ctx, o.db.Bun, p.ID, desc, pub)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "created ed25519 credential %s for %s\n", c.Credential.ID, p.Slug)
		fmt.Fprintf(stdout, "API key (X-API-Key, shown once): %s\n", c.APIKey)
		if c.PrivateKeyPEM != "" {
			fmt.Fprintf(stdout, "private key (shown once, never stored by Perks):\n%s", c.PrivateKeyPEM)
		}
	default:
		return fmt.Errorf("--kind must be hmac, ed25519 or request_jwt")
	}
	return nil
}

func credentialList(ctx context.Context, cmd *cli.Command) error {
	stdout := cmd.Root().Writer
	o, p, closeDB, err := openPartner(ctx, cmd, withKeys)
	if err != nil {
		return err
	}
	defer closeDB()
	creds, err := o.svc.Partners.ListCredentials(ctx, o.db.Bun, p.ID)
	if err != nil {
		return err
	}
	if cmd.Bool("json") {
		type row struct {
			ID          string     `json:"id"`
			Kind        string     `json:"kind"`
			Enabled     bool       `json:"enabled"`
			CreatedAt   time.Time  `json:"createdAt"`
			LastUsedAt  *time.Time `json:"lastUsedAt"`
			Description string     `json:"description"`
		}
		out := make([]row, 0, len(creds))
		for _, c := range creds {
			out = append(out, row{c.ID.String(), c.Kind, c.Enabled, c.CreatedAt.UTC(), c.LastUsedAt, c.Description})
		}
		return printJSON(stdout, out)
	}
	tw := newTable(stdout, "ID", "KIND", "STATE", "CREATED", "LAST USED", "DESCRIPTION")
	for _, c := range creds {
		used := "never"
		if c.LastUsedAt != nil {
			used = c.LastUsedAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, c.Kind, onOff(c.Enabled), c.CreatedAt.UTC().Format(time.RFC3339), used, c.Description)
	}
	return tw.Flush()
}

func credentialEnable(ctx context.Context, cmd *cli.Command, enabled bool) error {
	stdout := cmd.Root().Writer
	cid, err := uuid.Parse(cmd.String("id"))
	if err != nil {
		return fmt.Errorf("--id must be a credential id (see `perks partner credential list`)")
	}
	o, p, closeDB, err := openPartner(ctx, cmd, withKeys)
	if err != nil {
		return err
	}
	defer closeDB()
	if err := o.svc.Partners.SetCredentialEnabled(ctx, o.db.Bun, p.ID, cid, enabled); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "credential %s %s\n", cid, onOff(enabled))
	return nil
}

// orNone is a list, or "(none)" when empty.
func orNone(v []string) string {
	if len(v) == 0 {
		return "(none)"
	}
	return strings.Join(v, ",")
}
