// Package demo seeds the development partners: acme exactly as seed 000
// describes it, and globex, a second tenant for isolation tests. Seeding is
// idempotent: a second run changes nothing and prints the same credentials.
package demo

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/catalog"
	"github.com/perkshq/perks/internal/content"
	"github.com/perkshq/perks/internal/earning"
	"github.com/perkshq/perks/internal/merchant"
	"github.com/perkshq/perks/internal/partner"
	"github.com/perkshq/perks/internal/webhook"
)

// PartnerSpec is one demo partner.
type PartnerSpec struct {
	Slug, Name, DisplayName, LogoPath, ProgramName, CurrencyName, Issuer string
	HMACSecret                                                           string
	KeyID                                                                string
}

// Acme is seed 000's sandbox partner.
var Acme = PartnerSpec{
	Slug: "acme", Name: "Acme", DisplayName: "Acme Rewards", LogoPath: "uploads/partners/acme-logo.png",
	ProgramName: "Acme Rewards", CurrencyName: "points", Issuer: "https://acme.example.test",
	HMACSecret: "dev_acme_secret_change_me", KeyID: "acme-dev-1",
}

// AcmeSandbox is acme's sandbox (docs/sandbox.md): its own slug and HMAC
// secret; consumer tokens of the demo RSA key with kid KeyID reach it.
var AcmeSandbox = PartnerSpec{
	Slug: "acme" + partner.SandboxSuffix, HMACSecret: "dev_acme_sandbox_secret_change_me", KeyID: "acme-sandbox-dev-1",
}

// Globex is the second tenant.
var Globex = PartnerSpec{
	Slug: "globex", Name: "Globex", DisplayName: "Globex Miles", LogoPath: "uploads/partners/globex-logo.png",
	ProgramName: "Globex Miles", CurrencyName: "miles", Issuer: "https://globex.example.test",
	HMACSecret: "dev_globex_secret_change_me", KeyID: "globex-dev-1",
}

// Seeder seeds the demo data. Catalog and Merchants are optional: without
// them acme gets no gifts and no demo merchant.
type Seeder struct {
	DB         *bun.DB
	Partners   *partner.Service
	Earning    *earning.Service
	Content    *content.Service
	Catalog    *catalog.Service
	Merchants  *merchant.Service
	SecretsDir string
	// DemoWebhookURL, when set (PERKS_DEMO_WEBHOOK_URL), gives acme a
	// webhook endpoint subscribed to every event, created by Webhooks.
	Webhooks       *webhook.Service
	DemoWebhookURL string
}

// AcmeAds are acme's ads: one of each kind; the bonus offers an action.
var AcmeAds = map[string]content.Input{
	"bonus-video":     {Kind: content.KindBonus, Title: "Earn 5 points per video", Body: "Watch a partner video to the end, up to five times a day.", ActionCode: ptr("watch_video"), Priority: 10},
	"special-weekend": {Kind: content.KindSpecial, Title: "Double points weekend", Body: "Every purchase earns double points this weekend.", Priority: 5},
	"news-welcome":    {Kind: content.KindNews, Title: "Welcome to Acme Rewards", Body: "Earn points with every purchase and spend them on gifts.", Priority: 1},
}

func ptr[T any](v T) *T { return &v }

// AcmeRules are acme's earning rules: some the app may trigger, some only
// the partner's back end awards.
var AcmeRules = map[string]earning.RuleInput{
	"daily_login":      {Name: "Daily check-in", Description: "Open the app once a day.", Points: 10, ClientTriggerable: true, DailyCap: ptr(1), Enabled: true},
	"watch_video":      {Name: "Watch a video", Description: "Watch a partner video to the end.", Points: 5, ClientTriggerable: true, DailyCap: ptr(5), CooldownSeconds: ptr(60), Enabled: true},
	"complete_profile": {Name: "Complete your profile", Description: "Fill in every field of your profile.", Points: 50, ClientTriggerable: true, LifetimeCap: ptr(1), Enabled: true},
	"purchase":         {Name: "Purchase", Description: "One point per dollar spent, awarded by Acme.", Points: 1, VariablePoints: true, MaxPoints: ptr(int64(100000)), Enabled: true},
	"referral":         {Name: "Refer a friend", Description: "A friend you invited made their first purchase.", Points: 200, LifetimeCap: ptr(20), Enabled: true},
}

// Result describes one seeded partner.
type Result struct {
	Spec           PartnerSpec
	Partner        *partner.Partner
	PrivateKeyPath string
	// Merchant is acme's demo merchant (nil for other partners).
	Merchant *MerchantResult
	// Sandbox is acme's sandbox (nil for other partners).
	Sandbox *partner.Partner
}

// Run seeds every demo partner and prints their credentials to w.
func (s *Seeder) Run(ctx context.Context, w io.Writer) ([]Result, error) {
	var out []Result
	for _, spec := range []PartnerSpec{Acme, Globex} {
		r, err := s.SeedPartner(ctx, spec)
		if err != nil {
			return nil, err
		}
		out = append(out, *r)
	}
	sb, err := s.seedSandbox(ctx, out[0].Partner, out[0].PrivateKeyPath)
	if err != nil {
		return nil, err
	}
	out[0].Sandbox = sb
	for _, r := range out {
		fmt.Fprintf(w, "\n%s partner credentials (development only):\n", r.Spec.Name)
		fmt.Fprintf(w, "  slug:        %s\n", r.Spec.Slug)
		fmt.Fprintf(w, "  hmac secret: %s\n", r.Spec.HMACSecret)
		fmt.Fprintf(w, "  issuer:      %s\n", r.Spec.Issuer)
		fmt.Fprintf(w, "  private key: %s\n", r.PrivateKeyPath)
		if m := r.Merchant; m != nil {
			fmt.Fprintf(w, "\n%s demo merchant %q (development only; merchant API, docs/catalog.md):\n", r.Spec.Name, m.Merchant.Code)
			fmt.Fprintf(w, "  api key:     %s\n", m.APIKey)
			fmt.Fprintf(w, "  private key: %s (Ed25519, PKCS#8 PEM)\n", m.KeyPath)
			if m.Created {
				fmt.Fprintf(w, "  (generated by this run; the server keeps only the key's hash and the public key)\n")
			}
			fmt.Fprintf(w, "  honours:     %s\n", giftList())
		}
		if r.Sandbox != nil {
			fmt.Fprintf(w, "\n%s sandbox (test data only; answers carry Perks-Environment: sandbox, docs/sandbox.md):\n", r.Spec.Name)
			fmt.Fprintf(w, "  slug:        %s\n", r.Sandbox.Slug)
			fmt.Fprintf(w, "  hmac secret: %s\n", AcmeSandbox.HMACSecret)
			fmt.Fprintf(w, "  consumer key: kid %s, private key %s\n", AcmeSandbox.KeyID, r.PrivateKeyPath)
		}
	}
	if s.DemoWebhookURL != "" && s.Webhooks != nil {
		if err := s.seedWebhook(ctx, out[0].Partner, w); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// seedWebhook gives acme its demo endpoint once. The signing secret exists
// only in the answer that creates the endpoint, so it is printed on the
// first run; later runs point at `perks webhook rotate`.
func (s *Seeder) seedWebhook(ctx context.Context, p *partner.Partner, w io.Writer) error {
	var ep *webhook.Endpoint
	var secret string
	err := s.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var err error
		ep, secret, err = s.Webhooks.EnsureEndpointTx(ctx, tx, p.ID, s.DemoWebhookURL, "demo seed (PERKS_DEMO_WEBHOOK_URL)")
		return err
	})
	if err != nil {
		return fmt.Errorf("seed %s webhook endpoint %s (for a local receiver set PERKS_WEBHOOK_ALLOW_PRIVATE=true): %w", p.Slug, s.DemoWebhookURL, err)
	}
	fmt.Fprintf(w, "\n%s webhook endpoint (every event):\n", p.Name)
	fmt.Fprintf(w, "  id:          %s\n", ep.ID)
	fmt.Fprintf(w, "  url:         %s\n", ep.URL)
	if secret != "" {
		fmt.Fprintf(w, "  secret:      %s   (shown once: save it now)\n", secret)
	} else {
		fmt.Fprintf(w, "  secret:      shown when it was created; new one: perks webhook rotate --partner %s --id %s\n", p.Slug, ep.ID)
	}
	return nil
}

// seedSandbox creates acme's sandbox once, with its own HMAC secret and the
// demo RSA public key under its own kid (tokens carrying that kid resolve
// to the sandbox: it has no issuer).
func (s *Seeder) seedSandbox(ctx context.Context, live *partner.Partner, keyPath string) (*partner.Partner, error) {
	pubPEM, err := ensureRSAKey(keyPath)
	if err != nil {
		return nil, err
	}
	var sb *partner.Partner
	err = s.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		sb, _, err = s.Partners.EnsureSandbox(ctx, tx, live.ID)
		if err != nil {
			return err
		}
		secrets, err := s.Partners.EnabledSecrets(ctx, tx, sb.ID, partner.KindHMAC)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(secrets, func(sc partner.SharedSecret) bool { return string(sc.Secret) == AcmeSandbox.HMACSecret }) {
			if _, err := s.Partners.AddSharedSecret(ctx, tx, sb.ID, partner.KindHMAC, "demo seed", []byte(AcmeSandbox.HMACSecret)); err != nil {
				return err
			}
		}
		_, err = s.Partners.UpsertConsumerKey(ctx, tx, sb.ID, partner.AddConsumerKeyParams{
			Kid: AcmeSandbox.KeyID, Description: "demo seed RSA key", Algorithm: partner.AlgRS256, PublicKeyPEM: pubPEM,
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("seed %s sandbox: %w", live.Slug, err)
	}
	return sb, nil
}

// SeedPartner creates or refreshes one partner, its HMAC secret and its RSA
// consumer key (generated once into the secrets directory).
func (s *Seeder) SeedPartner(ctx context.Context, spec PartnerSpec) (*Result, error) {
	keyPath := filepath.Join(s.SecretsDir, spec.Slug+".private.pem")
	pubPEM, err := ensureRSAKey(keyPath)
	if err != nil {
		return nil, fmt.Errorf("seed %s key: %w", spec.Slug, err)
	}
	var p *partner.Partner
	var m *MerchantResult
	err = s.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		p, err = s.Partners.Upsert(ctx, tx, partner.CreateParams{
			Slug: spec.Slug, Name: spec.Name, DisplayName: spec.DisplayName, LogoPath: spec.LogoPath,
			ProgramName: spec.ProgramName, CurrencyName: spec.CurrencyName, Issuer: spec.Issuer,
		})
		if err != nil {
			return err
		}
		secrets, err := s.Partners.EnabledSecrets(ctx, tx, p.ID, partner.KindHMAC)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(secrets, func(sc partner.SharedSecret) bool { return string(sc.Secret) == spec.HMACSecret }) {
			if _, err := s.Partners.AddSharedSecret(ctx, tx, p.ID, partner.KindHMAC, "demo seed", []byte(spec.HMACSecret)); err != nil {
				return err
			}
		}
		_, err = s.Partners.UpsertConsumerKey(ctx, tx, p.ID, partner.AddConsumerKeyParams{
			Kid: spec.KeyID, Description: "demo seed RSA key", Algorithm: partner.AlgRS256, PublicKeyPEM: pubPEM,
		})
		if err != nil || spec.Slug != Acme.Slug || s.Earning == nil {
			return err
		}
		for code, in := range AcmeRules {
			if _, _, err := s.Earning.PutRule(ctx, tx, p.ID, code, in); err != nil {
				return err
			}
		}
		if s.Content != nil {
			for id, in := range AcmeAds {
				if _, _, err := s.Content.Put(ctx, tx, p.ID, id, in); err != nil {
					return err
				}
			}
		}
		if s.Catalog == nil || s.Merchants == nil {
			return nil
		}
		m, err = s.seedCatalog(ctx, tx, p.ID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("seed partner %s: %w", spec.Slug, err)
	}
	return &Result{Spec: spec, Partner: p, PrivateKeyPath: keyPath, Merchant: m}, nil
}

// ensureRSAKey reads or creates an RSA-2048 private key as PKCS#8 PEM (what
// jose's importPKCS8 expects) and returns the public key as PKIX PEM.
func ensureRSAKey(path string) (string, error) {
	var key *rsa.PrivateKey
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		k, err := ParsePrivateKey(b)
		if err != nil {
			return "", fmt.Errorf("%s: %w", path, err)
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return "", fmt.Errorf("%s: not an RSA key", path)
		}
		key = rk
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return "", err
		}
		key, err = rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return "", err
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			return "", err
		}
	default:
		return "", err
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
}

// ParsePrivateKey parses a PKCS#8 (or PKCS#1/SEC 1) PEM private key.
func ParsePrivateKey(b []byte) (any, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	if k, err := x509.ParseECPrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	return nil, errors.New("unsupported private key format")
}
