package apptest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/catalog"
	"github.com/perkshq/perks/internal/ledger"
	"github.com/perkshq/perks/internal/merchant"
	"github.com/perkshq/perks/internal/user"
)

// PartnerID returns a demo partner's id by slug.
func (e *Env) PartnerID(slug string) uuid.UUID {
	switch slug {
	case e.Acme.Spec.Slug:
		return e.Acme.Partner.ID
	case e.Globex.Spec.Slug:
		return e.Globex.Partner.ID
	case e.Acme.Sandbox.Slug:
		return e.Acme.Sandbox.ID
	}
	e.T.Fatalf("unknown partner %s", slug)
	return uuid.Nil
}

// FundedUser provisions a user of a demo partner (country may be "") and
// gives them points (0: none), directly through the services.
func (e *Env) FundedUser(slug, externalID, country string, points int64) uuid.UUID {
	e.T.Helper()
	pid := e.PartnerID(slug)
	var id uuid.UUID
	err := e.DB.Bun.RunInTx(context.Background(), nil, func(ctx context.Context, tx bun.Tx) error {
		var p user.Profile
		if country != "" {
			p.CountryCode = &country
		}
		name := "User " + externalID
		p.DisplayName = &name
		res, err := e.App.Users.UpsertTx(ctx, tx, pid, externalID, p)
		if err != nil {
			return err
		}
		id = res.User.ID
		if points == 0 {
			return nil
		}
		_, err = e.App.Ledger.ApplyTx(ctx, tx, pid, ledger.Change{UserID: id, Kind: ledger.KindEarn, Points: points, Reason: "test funding"})
		return err
	})
	require.NoError(e.T, err)
	return id
}

// PutGift creates or replaces a gift directly through the service.
func (e *Env) PutGift(slug, sku string, in catalog.GiftInput) *catalog.Gift {
	e.T.Helper()
	var g *catalog.Gift
	err := e.DB.Bun.RunInTx(context.Background(), nil, func(ctx context.Context, tx bun.Tx) error {
		var err error
		g, _, err = e.App.Catalog.PutGiftTx(ctx, tx, e.PartnerID(slug), sku, in)
		return err
	})
	require.NoError(e.T, err)
	return g
}

// UploadCodes adds pool codes directly through the service.
func (e *Env) UploadCodes(slug, sku string, codes ...string) {
	e.T.Helper()
	err := e.DB.Bun.RunInTx(context.Background(), nil, func(ctx context.Context, tx bun.Tx) error {
		_, err := e.App.Catalog.UploadCodesTx(ctx, tx, e.PartnerID(slug), sku, codes)
		return err
	})
	require.NoError(e.T, err)
}

// MerchantClient signs merchant requests (seed 004's Ed25519 scheme).
type MerchantClient struct {
	Env        *Env
	Merchant   *merchant.Merchant
	APIKey     string
	PrivateKey ed25519.PrivateKey
	ts         atomic.Int64
}

// NewMerchant creates a merchant with a credential for a demo partner.
func (e *Env) NewMerchant(slug, name string) *MerchantClient {
	e.T.Helper()
	var m *merchant.Merchant
	var cred *merchant.NewCredential
	err := e.DB.Bun.RunInTx(context.Background(), nil, func(ctx context.Context, tx bun.Tx) error {
		var err error
		m, cred, err = e.App.Merchants.CreateTx(ctx, tx, e.PartnerID(slug), name, "")
		return err
	})
	require.NoError(e.T, err)
	return &MerchantClient{Env: e, Merchant: m, APIKey: cred.APIKey, PrivateKey: cred.PrivateKey}
}

// DemoMerchant is a client for acme's seeded demo merchant.
func (e *Env) DemoMerchant() *MerchantClient {
	m := e.Acme.Merchant
	return &MerchantClient{Env: e, Merchant: m.Merchant, APIKey: m.APIKey, PrivateKey: m.PrivateKey}
}

// Timestamp returns a fresh X-Timestamp: each call a distinct second at or
// before the app's clock (within the skew), so two identical requests
// never share a signature.
func (c *MerchantClient) Timestamp() string {
	return strconv.FormatInt(c.Env.Now().Unix()-c.ts.Add(1)%250, 10)
}

// Headers signs a request and returns its credential headers.
func (c *MerchantClient) Headers(method, pathQuery string, body []byte, idempotencyKey string) map[string]string {
	ts := c.Timestamp()
	h := map[string]string{
		merchant.HeaderAPIKey:    c.APIKey,
		merchant.HeaderTimestamp: ts,
		merchant.HeaderSignature: merchant.Sign(c.PrivateKey, merchant.Canonical(ts, method, pathQuery, body, idempotencyKey)),
	}
	if idempotencyKey != "" {
		h[merchant.HeaderIdempotencyKey] = idempotencyKey
	}
	return h
}

// Send sends a request with the given headers verbatim (for tampering).
func (c *MerchantClient) Send(method, pathQuery string, body []byte, headers map[string]string) *Response {
	c.Env.T.Helper()
	req, err := http.NewRequest(method, c.Env.Server.URL+pathQuery, bytes.NewReader(body))
	require.NoError(c.Env.T, err)
	if len(body) > 0 {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	return c.Env.Do(req)
}

// Do signs and sends a request.
func (c *MerchantClient) Do(method, pathQuery string, body []byte, idempotencyKey string) *Response {
	c.Env.T.Helper()
	return c.Send(method, pathQuery, body, c.Headers(method, pathQuery, body, idempotencyKey))
}

// Lookup is GET /merchant/vouchers/{code}.
func (c *MerchantClient) Lookup(code string) *Response {
	c.Env.T.Helper()
	return c.Do(http.MethodGet, "/merchant/vouchers/"+code, nil, "")
}

// Redeem is POST /merchant/redemptions.
func (c *MerchantClient) Redeem(code, otp string) *Response {
	c.Env.T.Helper()
	b, _ := json.Marshal(map[string]string{"code": code, "otp": otp})
	return c.Do(http.MethodPost, "/merchant/redemptions", b, "")
}

// ClaimResult is claimGift's answer.
type ClaimResult struct {
	*GraphQLResult
	VoucherID string
	Code      *string
	Balance   int
}

// ClaimMutation is the claimGift operation the helpers send.
const ClaimMutation = `mutation($gift: ID!, $key: String!) {
  claimGift(giftId: $gift, idempotencyKey: $key) { balance voucher { id code status costPoints expiresAt gift { sku } } }
}`

// Claim claims a gift over GraphQL.
func (e *Env) Claim(token string, giftID uuid.UUID, key string) *ClaimResult {
	e.T.Helper()
	res := e.GraphQL(token, ClaimMutation, map[string]any{"gift": giftID.String(), "key": key})
	out := &ClaimResult{GraphQLResult: res}
	if len(res.Errors) == 0 {
		var d struct {
			ClaimGift struct {
				Balance int
				Voucher struct {
					ID   string
					Code *string
				}
			}
		}
		require.NoError(e.T, json.Unmarshal(res.Data, &d), "%s", res.Data)
		out.VoucherID, out.Code, out.Balance = d.ClaimGift.Voucher.ID, d.ClaimGift.Voucher.Code, d.ClaimGift.Balance
	}
	return out
}

// RequestOTP asks for a one-time redemption code over GraphQL.
func (e *Env) RequestOTP(token, voucherID string) string {
	e.T.Helper()
	res := e.GraphQL(token, `mutation($id: ID!) { requestRedemptionCode(voucherId: $id) { code expiresAt } }`, map[string]any{"id": voucherID})
	require.Empty(e.T, res.Errors, "%+v", res.Errors)
	var d struct{ RequestRedemptionCode struct{ Code string } }
	require.NoError(e.T, json.Unmarshal(res.Data, &d))
	return d.RequestRedemptionCode.Code
}

// Balance reads a user's balance.
func (e *Env) Balance(slug string, userID uuid.UUID) int64 {
	e.T.Helper()
	b, err := e.App.Ledger.BalanceOf(context.Background(), e.DB.Bun, e.PartnerID(slug), userID)
	require.NoError(e.T, err)
	return b.Points
}

// Count runs SELECT count(*) with a WHERE clause.
func (e *Env) Count(table, where string, args ...any) int {
	e.T.Helper()
	n, err := e.DB.Bun.NewSelect().TableExpr(table).Where(where, args...).Count(context.Background())
	require.NoError(e.T, err, fmt.Sprintf("count %s", table))
	return int(n)
}
