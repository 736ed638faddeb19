package demo

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/catalog"
	"github.com/perkshq/perks/internal/merchant"
	"github.com/perkshq/perks/internal/partner"
)

// DemoMerchant is acme's demo shop; it honours the in-store gifts.
var DemoMerchant = struct{ Code, Name string }{Code: "acme-store", Name: "Acme Store"}

// Files under the secrets directory that keep the demo merchant usable
// across `perks seed` runs. The platform shows a merchant's private key
// once and stores only the public key; for the development demo the seed
// keeps the secrets here (0600) instead, so a second run can print them
// again. Deleting them makes the next seed add a fresh credential.
const (
	MerchantKeyFile    = "merchant-demo.key"
	MerchantAPIKeyFile = "merchant-demo.apikey"
)

// AcmeGifts is acme's demo catalog: a pool gift (with DemoCodes uploaded),
// a generated-code gift, an online gift and a gift with stock 3. The
// in-store ones are honoured by DemoMerchant.
var AcmeGifts = []struct {
	SKU string
	In  catalog.GiftInput
}{
	{"coffee", catalog.GiftInput{
		Title: "Free coffee", Description: "Any hot drink at an Acme Store counter.", Category: "food",
		ImageURL: "https://acme.example.test/img/coffee.png", CostPoints: 100, CodeSource: catalog.SourcePool,
		VoucherLifetimeSeconds: ptr(30 * 24 * 3600), Merchants: []string{DemoMerchant.Code}, Position: 10,
	}},
	{"store-10-off", catalog.GiftInput{
		Title: "10% off your next purchase", Description: "Show the code and the one-time code at the checkout.", Category: "shopping",
		ImageURL: "https://acme.example.test/img/ten-off.png", CostPoints: 250, CodeSource: catalog.SourceGenerated,
		CodePattern: "ACME-####-XXXX", VoucherLifetimeSeconds: ptr(14 * 24 * 3600), Merchants: []string{DemoMerchant.Code}, Position: 20,
	}},
	{"ebook", catalog.GiftInput{
		Title: "E-book: The Rewards Handbook", Description: "Read it in the app; no code needed.", Category: "digital",
		CostPoints: 50, CodeSource: catalog.SourceNone, PerUserLimit: ptr(1), Position: 30,
	}},
	{"limited-tote", catalog.GiftInput{
		Title: "Limited edition tote bag", Description: "Only three exist. Collect it at an Acme Store.", Category: "shopping",
		CostPoints: 500, Stock: ptr(3), PerUserLimit: ptr(1), CodeSource: catalog.SourceGenerated, CodePattern: "TOTE-XXXX-####",
		VoucherLifetimeSeconds: ptr(7 * 24 * 3600), RefundOnExpiry: true, Merchants: []string{DemoMerchant.Code}, Position: 40,
	}},
}

// DemoCodes are the 50 codes uploaded to the coffee pool.
func DemoCodes() []string {
	out := make([]string, 50)
	for i := range out {
		out[i] = fmt.Sprintf("COFFEE-DEMO-%04d", i+1)
	}
	return out
}

// MerchantResult is the demo merchant and its (development) credential.
type MerchantResult struct {
	Merchant   *merchant.Merchant
	APIKey     string
	PrivateKey ed25519.PrivateKey
	KeyPath    string
	// Created is true when this run generated the credential.
	Created bool
}

// seedCatalog creates acme's demo merchant (once), its credential and the
// catalog (replaced on every run; uploading the demo codes again inserts
// nothing).
func (s *Seeder) seedCatalog(ctx context.Context, tx bun.Tx, partnerID uuid.UUID) (*MerchantResult, error) {
	m, err := s.Merchants.ByCode(ctx, tx, partnerID, DemoMerchant.Code)
	res := &MerchantResult{KeyPath: filepath.Join(s.SecretsDir, MerchantKeyFile)}
	switch {
	case err == nil:
		res.Merchant = m
		res.APIKey, res.PrivateKey, err = s.readMerchantSecrets(ctx, tx, m)
		if err != nil {
			return nil, err
		}
		if res.PrivateKey == nil {
			cred, err := s.Merchants.AddCredential(ctx, tx, partnerID, m.ID, "demo seed (secrets file was missing)")
			if err != nil {
				return nil, err
			}
			res.APIKey, res.PrivateKey, res.Created = cred.APIKey, cred.PrivateKey, true
			if err := s.writeMerchantSecrets(cred); err != nil {
				return nil, err
			}
		}
	case apperr.Is(err, apperr.CodeNotFound):
		m, cred, err := s.Merchants.CreateTx(ctx, tx, partnerID, DemoMerchant.Name, DemoMerchant.Code)
		if err != nil {
			return nil, err
		}
		res.Merchant, res.APIKey, res.PrivateKey, res.Created = m, cred.APIKey, cred.PrivateKey, true
		if err := s.writeMerchantSecrets(cred); err != nil {
			return nil, err
		}
	default:
		return nil, err
	}
	for _, g := range AcmeGifts {
		if _, _, err := s.Catalog.PutGiftTx(ctx, tx, partnerID, g.SKU, g.In); err != nil {
			return nil, fmt.Errorf("seed gift %s: %w", g.SKU, err)
		}
	}
	if _, err := s.Catalog.UploadCodesTx(ctx, tx, partnerID, "coffee", DemoCodes()); err != nil {
		return nil, fmt.Errorf("seed coffee codes: %w", err)
	}
	return res, nil
}

// readMerchantSecrets reads the kept secrets when they still match an
// enabled credential of m; it returns a nil key when they do not.
func (s *Seeder) readMerchantSecrets(ctx context.Context, db bun.IDB, m *merchant.Merchant) (string, ed25519.PrivateKey, error) {
	keyPEM, err1 := os.ReadFile(filepath.Join(s.SecretsDir, MerchantKeyFile))
	apiKey, err2 := os.ReadFile(filepath.Join(s.SecretsDir, MerchantAPIKeyFile))
	if err1 != nil || err2 != nil {
		return "", nil, nil
	}
	k, err := ParsePrivateKey(keyPEM)
	if err != nil {
		return "", nil, nil
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return "", nil, nil
	}
	key := strings.TrimSpace(string(apiKey))
	creds, err := s.Merchants.Credentials(ctx, db, m.PartnerID, m.ID)
	if err != nil {
		return "", nil, err
	}
	for _, c := range creds {
		if c.Enabled && string(c.APIKeyHash) == string(partner.HashAPIKey(key)) && string(c.PublicKey) == string(priv.Public().(ed25519.PublicKey)) {
			return key, priv, nil
		}
	}
	return "", nil, nil
}

func (s *Seeder) writeMerchantSecrets(c *merchant.NewCredential) error {
	if err := os.MkdirAll(s.SecretsDir, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(s.SecretsDir, MerchantKeyFile), []byte(c.PrivateKeyPEM), 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(s.SecretsDir, MerchantAPIKeyFile), []byte(c.APIKey+"\n"), 0o600)
}

func giftList() string {
	var skus []string
	for _, g := range AcmeGifts {
		if len(g.In.Merchants) > 0 {
			skus = append(skus, g.SKU)
		}
	}
	return strings.Join(skus, ", ")
}
