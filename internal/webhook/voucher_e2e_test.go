package webhook_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
)

// TestVoucherRedeemedEndToEnd is seed 000 step 5: a user claims an online
// gift and redeems it in the app; the partner's receiver gets
// voucher.claimed then voucher.redeemed, each signed per Standard Webhooks.
func TestVoucherRedeemedEndToEnd(t *testing.T) {
	t.Parallel()
	env := apptest.New(t, apptest.Options{Workers: true})
	rcv := newReceiver(t)
	res := env.PartnerJSON("acme", http.MethodPut, "/integrations/webhook-endpoints/"+uuid.NewString(), map[string]any{
		"url": rcv.URL + "/hooks", "eventTypes": []string{"voucher.claimed", "voucher.redeemed"},
	})
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	secret := res.JSON(t)["secret"].(string)

	require.Equal(t, http.StatusCreated, env.Partner("acme", http.MethodPost, "/integrations/actions",
		[]byte(`{"externalUserId":"reader","action":"purchase","points":80,"createUser":true}`)).StatusCode)
	tok := env.Token("acme", "reader", nil)

	g := env.GraphQL(tok, `{ catalog(first: 20) { edges { node { id sku } } } }`, nil)
	require.Empty(t, g.Errors)
	var cat struct {
		Catalog struct {
			Edges []struct{ Node struct{ ID, SKU string } }
		}
	}
	require.NoError(t, json.Unmarshal(g.Data, &cat))
	var ebook string
	for _, e := range cat.Catalog.Edges {
		if e.Node.SKU == "ebook" {
			ebook = e.Node.ID
		}
	}
	require.NotEmpty(t, ebook)

	claim := env.GraphQL(tok, `mutation($g: ID!) { claimGift(giftId: $g, idempotencyKey: "c1") { balance voucher { id status } } }`, map[string]any{"g": ebook})
	require.Empty(t, claim.Errors)
	var c struct {
		ClaimGift struct {
			Balance int
			Voucher struct{ ID, Status string }
		}
	}
	require.NoError(t, json.Unmarshal(claim.Data, &c))
	require.Equal(t, 30, c.ClaimGift.Balance)

	r, p := rcv.next(t)
	require.Equal(t, "voucher.claimed", p.Type)
	require.NoError(t, verifyStandard(secret, r.Header, r.Body, env.Now()))

	red := env.GraphQL(tok, `mutation($v: ID!) { redeemVoucher(id: $v) { status } }`, map[string]any{"v": c.ClaimGift.Voucher.ID})
	require.Empty(t, red.Errors)
	r, p = rcv.next(t)
	require.Equal(t, "voucher.redeemed", p.Type)
	require.NoError(t, verifyStandard(secret, r.Header, r.Body, env.Now()), "the signature verifies with the Standard Webhooks algorithm")
	require.Equal(t, p.ID, r.Header.Get("webhook-id"))
	require.Equal(t, c.ClaimGift.Voucher.ID, p.Data["voucherId"], "%v", p.Data)
	require.Equal(t, map[string]any{"id": env.Acme.Partner.ID.String(), "slug": "acme"}, p.Partner)
	rcv.none(t, env)
}
