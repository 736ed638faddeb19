package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"

	"github.com/perkshq/perks/internal/app"
	"github.com/perkshq/perks/internal/config"
	"github.com/perkshq/perks/internal/database"
	"github.com/perkshq/perks/internal/partner"
)

// operator is what the operator commands need: the database and the
// partner service (with the master keyring, to seal secrets).
type operator struct {
	cfg      *config.Config
	db       *database.DB
	partners *partner.Service
}

func openOperator(ctx context.Context, stderr io.Writer) (*operator, func(), error) {
	cfg, db, closeDB, err := open(ctx, stderr)
	if err != nil {
		return nil, nil, err
	}
	keys, err := app.LoadKeyringFor(ctx, cfg, newLogger(io.Discard, "error"), db.Bun)
	if err != nil {
		closeDB()
		return nil, nil, err
	}
	return &operator{cfg: cfg, db: db, partners: partner.NewService(keys)}, closeDB, nil
}

// openPartner is openOperator followed by loading the --partner flag's
// partner, the start of most operator commands.
func openPartner(ctx context.Context, stderr io.Writer, slug string) (*operator, *partner.Partner, func(), error) {
	o, closeDB, err := openOperator(ctx, stderr)
	if err != nil {
		return nil, nil, nil, err
	}
	p, err := o.partner(ctx, slug)
	if err != nil {
		closeDB()
		return nil, nil, nil, err
	}
	return o, p, closeDB, nil
}

func (o *operator) partner(ctx context.Context, slug string) (*partner.Partner, error) {
	if slug == "" {
		return nil, errors.New("--partner is required")
	}
	p, err := o.partners.BySlug(ctx, o.db.Bun, slug)
	if err != nil {
		return nil, fmt.Errorf("partner %s: %w", slug, err)
	}
	return p, nil
}

// subcommand dispatches "perks <group> <sub> ...".
func subcommand(ctx context.Context, group string, subs map[string]func(context.Context, []string, io.Writer, io.Writer) error, usage string, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	f, ok := subs[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "perks %s: unknown subcommand %q\n\n%s", group, args[0], usage)
		return errUsage
	}
	return f(ctx, args[1:], stdout, stderr)
}

const partnerUsage = `Usage: perks partner <subcommand> [flags]

Subcommands:
  create      --slug S --name N [--display-name D] [--issuer URL] [--program P] [--currency C]
  list
  show        --partner S
  set         --partner S [--api-enabled=true|false] [--require-hmac-v2=true|false]
              [--allowed-origins IP,CIDR,host,...] [--schemes hmac,ed25519,request_jwt]
              [--rate-limit N|default] [--rate-limit-burst N|default]
              [--consumer-rate-limit N|default] [--consumer-rate-limit-burst N|default]
              [--audience AUD] [--max-token-lifetime 168h] [--issuer URL] [--jwks-url URL]
              [--frame-ancestors "'self',https://app.example.com,https://*.example.com"]
              (an empty value clears origins, schemes, audience, issuer, jwks-url and
               frame-ancestors; rate limits are per minute per replica, 0 = unlimited;
               frame-ancestors: who may frame /consumer?partner=S, default 'none')
  credential  create --partner S --kind hmac|ed25519|request_jwt [--description D]
                     [--public-key FILE (ed25519: register your own)] [--secret-file FILE]
              list --partner S
              disable|enable --partner S --id UUID

Secrets, API keys and generated private keys are printed once and never stored in clear.
`

func runPartner(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return subcommand(ctx, "partner", map[string]func(context.Context, []string, io.Writer, io.Writer) error{
		"create":     partnerCreate,
		"list":       partnerList,
		"show":       partnerShow,
		"set":        partnerSet,
		"credential": runCredential,
	}, partnerUsage, args, stdout, stderr)
}

func newFlags(name string, stderr io.Writer, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	return fs
}

func partnerCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("partner create", stderr, partnerUsage)
	slug := fs.String("slug", "", "URL-safe identifier")
	name := fs.String("name", "", "name")
	display := fs.String("display-name", "", "name shown to users")
	issuer := fs.String("issuer", "", "iss of the partner's consumer tokens")
	program := fs.String("program", "", "program name")
	currency := fs.String("currency", "", "points currency name (default points)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o, closeDB, err := openOperator(ctx, stderr)
	if err != nil {
		return err
	}
	defer closeDB()
	if _, err := o.partners.BySlug(ctx, o.db.Bun, *slug); err == nil {
		return fmt.Errorf("partner %s already exists (use `perks partner set`)", *slug)
	}
	p, err := o.partners.Upsert(ctx, o.db.Bun, partner.CreateParams{
		Slug: *slug, Name: *name, DisplayName: *display, ProgramName: *program, CurrencyName: *currency, Issuer: *issuer,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "created partner %s (%s)\n", p.Slug, p.ID)
	fmt.Fprintln(stdout, "next: `perks partner credential create --partner "+p.Slug+" --kind hmac|ed25519|request_jwt` and `perks key add`")
	return nil
}

func partnerList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("partner list", stderr, partnerUsage)
	if err := fs.Parse(args); err != nil {
		return err
	}
	o, closeDB, err := openOperator(ctx, stderr)
	if err != nil {
		return err
	}
	defer closeDB()
	ps, err := o.partners.List(ctx, o.db.Bun)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SLUG\tID\tNAME\tAPI\tSCHEMES")
	for _, p := range ps {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.Slug, p.ID, p.Name, onOff(p.APIEnabled), orAll(p.AllowedSchemes))
	}
	return tw.Flush()
}

func onOff(b bool) string {
	if b {
		return "enabled"
	}
	return "disabled"
}

// frameAncestorsText is the CSP frame-ancestors value of a partner's list.
func frameAncestorsText(v []string) string {
	if len(v) == 0 {
		return "'none'"
	}
	return strings.Join(v, " ")
}

func orAll(v []string) string {
	if len(v) == 0 {
		return "(any)"
	}
	return strings.Join(v, ",")
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

func partnerShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("partner show", stderr, partnerUsage)
	slug := fs.String("partner", "", "partner slug")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o, p, closeDB, err := openPartner(ctx, stderr, *slug)
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
	fmt.Fprintf(tw, "api access:\t%s\n", onOff(p.APIEnabled))
	fmt.Fprintf(tw, "schemes:\t%s\n", orAll(p.AllowedSchemes))
	fmt.Fprintf(tw, "require hmac v2:\t%v\n", p.RequireHMACV2)
	fmt.Fprintf(tw, "allowed origins:\t%s\n", orAll(p.AllowedOrigins))
	fmt.Fprintf(tw, "rate limit/min:\t%s (burst %s)\n", limitText(p.RateLimitPerMinute, cfg.RateLimitPerMinute), limitText(p.RateLimitBurst, cfg.RateLimitBurst))
	fmt.Fprintf(tw, "consumer rate limit/min:\t%s (burst %s)\n", limitText(p.ConsumerRateLimitPerMinute, cfg.ConsumerRateLimitPerMinute), limitText(p.ConsumerRateLimitBurst, cfg.ConsumerRateLimitBurst))
	fmt.Fprintf(tw, "issuer:\t%s\n", str(p.Issuer))
	fmt.Fprintf(tw, "audience:\t%s\n", str(&aud))
	fmt.Fprintf(tw, "max token lifetime:\t%s\n", p.MaxTokenLifetime())
	fmt.Fprintf(tw, "jwks url:\t%s\n", str(p.JWKSURL))
	fmt.Fprintf(tw, "frame ancestors:\t%s\n", frameAncestorsText(p.FrameAncestors))
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

func partnerSet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("partner set", stderr, partnerUsage)
	slug := fs.String("partner", "", "partner slug")
	apiEnabled := fs.Bool("api-enabled", true, "API access on or off (partner and consumer calls)")
	v2 := fs.Bool("require-hmac-v2", false, "refuse HMAC requests without a v2 signature")
	origins := fs.String("allowed-origins", "", "comma-separated IPs, CIDRs and host names; empty = any")
	schemes := fs.String("schemes", "", "comma-separated schemes the partner may use; empty = any")
	rate := fs.String("rate-limit", "", "back-end requests per minute per replica (0 = unlimited, default)")
	burst := fs.String("rate-limit-burst", "", "back-end burst (default)")
	crate := fs.String("consumer-rate-limit", "", "consumer requests per minute per replica (0 = unlimited, default)")
	cburst := fs.String("consumer-rate-limit-burst", "", "consumer burst (default)")
	aud := fs.String("audience", "", "required aud of consumer tokens; empty = none")
	life := fs.Duration("max-token-lifetime", 0, "longest consumer token lifetime (exp - iat)")
	issuer := fs.String("issuer", "", "iss of consumer tokens; empty = none")
	jwks := fs.String("jwks-url", "", "JWKS URL of consumer token keys; empty = none")
	frames := fs.String("frame-ancestors", "", "comma-separated CSP sources that may frame the webview ('self', https://host); empty = none")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var c partner.Controls
	var ferr error
	limit := func(dst **int, v string) {
		n, err := limitFlag(v)
		if err != nil {
			ferr = err
		}
		*dst = &n
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "api-enabled":
			c.APIEnabled = apiEnabled
		case "require-hmac-v2":
			c.RequireHMACV2 = v2
		case "allowed-origins":
			l := splitList(*origins)
			c.AllowedOrigins = &l
		case "schemes":
			l := splitList(*schemes)
			c.AllowedSchemes = &l
		case "rate-limit":
			limit(&c.RateLimitPerMinute, *rate)
		case "rate-limit-burst":
			limit(&c.RateLimitBurst, *burst)
		case "consumer-rate-limit":
			limit(&c.ConsumerRateLimitPerMinute, *crate)
		case "consumer-rate-limit-burst":
			limit(&c.ConsumerRateLimitBurst, *cburst)
		case "audience":
			c.Audience = aud
		case "max-token-lifetime":
			s := int(life.Seconds())
			c.MaxTokenLifetimeSeconds = &s
		case "issuer":
			c.Issuer = issuer
		case "jwks-url":
			c.JWKSURL = jwks
		case "frame-ancestors":
			l := splitList(*frames)
			c.FrameAncestors = &l
		}
	})
	if ferr != nil {
		return ferr
	}
	o, p, closeDB, err := openPartner(ctx, stderr, *slug)
	if err != nil {
		return err
	}
	defer closeDB()
	p, err = o.partners.UpdateControls(ctx, o.db.Bun, p.ID, c)
	if err != nil {
		return err
	}
	printPartner(stdout, o.cfg, p)
	return nil
}

func runCredential(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return subcommand(ctx, "partner credential", map[string]func(context.Context, []string, io.Writer, io.Writer) error{
		"create": credentialCreate,
		"list":   credentialList,
		"disable": func(ctx context.Context, a []string, o, e io.Writer) error {
			return credentialEnable(ctx, a, o, e, false)
		},
		"enable": func(ctx context.Context, a []string, o, e io.Writer) error {
			return credentialEnable(ctx, a, o, e, true)
		},
	}, partnerUsage, args, stdout, stderr)
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

func credentialCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("partner credential create", stderr, partnerUsage)
	slug := fs.String("partner", "", "partner slug")
	kind := fs.String("kind", "", "hmac, ed25519 or request_jwt")
	desc := fs.String("description", "", "what this credential is for")
	pubFile := fs.String("public-key", "", "ed25519: register this public key (PEM or base64) instead of generating a pair")
	secretFile := fs.String("secret-file", "", "hmac/request_jwt: use this secret (file, - for stdin) instead of generating one")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o, p, closeDB, err := openPartner(ctx, stderr, *slug)
	if err != nil {
		return err
	}
	defer closeDB()
	switch *kind {
	case partner.KindHMAC, partner.KindRequestJWT:
		secret := []byte(partner.NewSecret())
		if *secretFile != "" {
			if secret, err = readSecretFile(*secretFile); err != nil {
				return err
			}
		}
		c, err := o.partners.AddSharedSecret(ctx, o.db.Bun, p.ID, *kind, *desc, secret)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "created %s credential %s for %s\n", c.Kind, c.ID, p.Slug)
		if *kind == partner.KindRequestJWT {
			fmt.Fprintf(stdout, "partner id (iss): %s\n", p.ID)
		}
		if *secretFile == "" {
			fmt.Fprintf(stdout, "secret (shown once, store it in your secret manager): %s\n", secret)
		}
	case partner.KindEd25519:
		var pub ed25519.PublicKey
		if *pubFile != "" {
			b, err := os.ReadFile(*pubFile)
			if err != nil {
				return err
			}
			if pub, err = partner.ParseEd25519PublicKey(string(b)); err != nil {
				return err
			}
		}
		c, err := o.partners.CreateEd25519Credential(ctx, o.db.Bun, p.ID, *desc, pub)
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

func credentialList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("partner credential list", stderr, partnerUsage)
	slug := fs.String("partner", "", "partner slug")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o, p, closeDB, err := openPartner(ctx, stderr, *slug)
	if err != nil {
		return err
	}
	defer closeDB()
	creds, err := o.partners.ListCredentials(ctx, o.db.Bun, p.ID)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tKIND\tSTATE\tCREATED\tLAST USED\tDESCRIPTION")
	for _, c := range creds {
		used := "never"
		if c.LastUsedAt != nil {
			used = c.LastUsedAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, c.Kind, onOff(c.Enabled), c.CreatedAt.UTC().Format(time.RFC3339), used, c.Description)
	}
	return tw.Flush()
}

func credentialEnable(ctx context.Context, args []string, stdout, stderr io.Writer, enabled bool) error {
	fs := newFlags("partner credential enable", stderr, partnerUsage)
	slug := fs.String("partner", "", "partner slug")
	id := fs.String("id", "", "credential id")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cid, err := uuid.Parse(*id)
	if err != nil {
		return fmt.Errorf("--id must be a credential id (see `perks partner credential list`)")
	}
	o, p, closeDB, err := openPartner(ctx, stderr, *slug)
	if err != nil {
		return err
	}
	defer closeDB()
	if err := o.partners.SetCredentialEnabled(ctx, o.db.Bun, p.ID, cid, enabled); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "credential %s %s\n", cid, onOff(enabled))
	return nil
}

// algorithmOf names the one JWT algorithm a key type is used with.
func algorithmOf(key any) (string, error) {
	switch k := key.(type) {
	case *rsa.PublicKey, *rsa.PrivateKey:
		return partner.AlgRS256, nil
	case *ecdsa.PublicKey:
		if k.Curve.Params().Name == "P-256" {
			return partner.AlgES256, nil
		}
	case *ecdsa.PrivateKey:
		if k.Curve.Params().Name == "P-256" {
			return partner.AlgES256, nil
		}
	case ed25519.PublicKey, ed25519.PrivateKey:
		return partner.AlgEdDSA, nil
	}
	return "", fmt.Errorf("unsupported key type %T (use RSA, EC P-256 or Ed25519)", key)
}
