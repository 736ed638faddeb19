package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/perkshq/perks/internal/catalog"
	"github.com/perkshq/perks/internal/merchant"
)

func init() {
	register(Scenario{Name: "catalog", Run: runCatalog})
}

const (
	catalogUsers   = 200
	catalogGifts   = 40
	catalogClients = 64
)

const catalogQuery = `{ catalog(first: 20) { edges { cursor node { id sku title costPoints stock claimedByMe canClaim reason redemption merchants { id name } } } pageInfo { hasNextPage endCursor } } }`

// runCatalog measures a GraphQL catalog page of 20 gifts with the user's
// availability against a bare net/http + pgx handler that runs the same
// four catalog queries (page, merchants, claim counts, balance) and
// encodes a similar JSON document, in the same run. The bare handler
// skips what the API does besides: JWT verification and the user lookup
// (one statement; the partner and its keys come from the replica's cache),
// GraphQL parsing (cached) and execution.
func runCatalog(ctx context.Context, b *Bench) ([]Row, error) {
	users, err := provisionConsumers(ctx, b, "catalog-", catalogUsers, 0)
	if err != nil {
		return nil, err
	}
	p, err := b.App.Partners.BySlug(ctx, b.DB.Bun, "acme")
	if err != nil {
		return nil, err
	}
	// 40 gifts sorted before the demo ones, with two merchants, limits and
	// stock, and claim counters for some users so every loader has rows.
	var giftIDs []uuid.UUID
	err = b.DB.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		m2, _, err := b.App.Merchants.CreateTx(ctx, tx, p.ID, "Bench Outlet", "bench-outlet")
		if err != nil {
			return err
		}
		for i := 0; i < catalogGifts; i++ {
			in := catalog.GiftInput{Title: fmt.Sprintf("Catalog gift %d", i), Description: "A gift of the benchmark catalog.",
				CostPoints: int64(50 * (i + 1)), CodeSource: catalog.SourceGenerated, CodePattern: "CAT-XXXX-####-XX",
				Merchants: []string{"acme-store", m2.Code}, Position: -1000 + i, Category: "bench"}
			if i%4 == 0 {
				in.PerUserLimit = ptr(1)
			}
			if i%5 == 0 {
				in.Stock = ptr(1000)
			}
			if i%7 == 0 {
				in.Merchants, in.CodeSource, in.CodePattern = nil, catalog.SourceNone, ""
			}
			g, _, err := b.App.Catalog.PutGiftTx(ctx, tx, p.ID, fmt.Sprintf("cat-%02d", i), in)
			if err != nil {
				return err
			}
			giftIDs = append(giftIDs, g.ID)
		}
		for _, u := range users[:catalogUsers/2] {
			if _, err := tx.NewRaw(`INSERT INTO balances (partner_id, user_id, points, lifetime_earned) VALUES (?, ?, 0, 0)
				ON CONFLICT DO NOTHING`, p.ID, u.ID).Exec(ctx); err != nil {
				return err
			}
			if _, err := tx.NewRaw(`INSERT INTO gift_claim_counters (partner_id, user_id, gift_id, claims)
				SELECT ?, ?, unnest(?::uuid[]), 0`, p.ID, u.ID, pgdialect.Array(giftIDs[:5])).Exec(ctx); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}

	body, _ := json.Marshal(map[string]any{"query": catalogQuery})
	rate, p50, p99, err := Load(ctx, catalogClients, b.Duration, func(ctx context.Context, c, i int) error {
		code, err := postGraphQL(ctx, b, users[(i*catalogClients+c)%catalogUsers].Token, body)
		if err == nil && code != "" {
			err = fmt.Errorf("catalog answered %s", code)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	out := []Row{{Scenario: "catalog", Variant: "API catalog(first: 20) (GraphQL)", Clients: catalogClients, Rate: rate, Unit: "req/s", P50: p50, P99: p99}}

	// The floor under every consumer request: token verification and the
	// user lookup, with the smallest query.
	me, _ := json.Marshal(map[string]any{"query": `{ me { id } }`})
	floor, fp50, fp99, err := Load(ctx, catalogClients, b.Duration, func(ctx context.Context, c, i int) error {
		code, err := postGraphQL(ctx, b, users[(i*catalogClients+c)%catalogUsers].Token, me)
		if err == nil && code != "" {
			err = fmt.Errorf("me answered %s", code)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	out = append(out, Row{Scenario: "catalog", Variant: "API { me { id } } (auth floor)", Clients: catalogClients, Rate: floor, Unit: "req/s", P50: fp50, P99: fp99})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: bareCatalog(b, p.ID)}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	url := "http://" + ln.Addr().String() + "/catalog"
	bare, bp50, bp99, err := Load(ctx, catalogClients, b.Duration, func(ctx context.Context, c, i int) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		req.Header.Set("X-User-Id", users[(i*catalogClients+c)%catalogUsers].ID.String())
		res, err := b.Client.Do(req)
		if err != nil {
			return err
		}
		raw, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("bare catalog answered %d: %s", res.StatusCode, raw)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out = append(out, Row{Scenario: "catalog", Variant: "bare net/http + pgx (same 4 queries)", Clients: catalogClients, Rate: bare, Unit: "req/s",
		P50: bp50, P99: bp99, Note: fmt.Sprintf("API/bare = %.2f", rate/bare)})
	out[0].Note = fmt.Sprintf("API/bare = %.2f", rate/bare)
	return out, nil
}

type bareGift struct {
	ID          uuid.UUID      `json:"id"`
	SKU         string         `json:"sku"`
	Title       string         `json:"title"`
	CostPoints  int64          `json:"costPoints"`
	Stock       *int           `json:"stock"`
	ClaimedByMe int            `json:"claimedByMe"`
	CanClaim    bool           `json:"canClaim"`
	Reason      *string        `json:"reason"`
	Redemption  string         `json:"redemption"`
	Merchants   []bareMerchant `json:"merchants"`
	gift        catalog.Gift
	merchants   []merchant.Merchant
}

type bareMerchant struct {
	ID   uuid.UUID `json:"id"`
	Name string    `json:"name"`
}

// bareCatalog is the baseline handler: the user comes from a header, and
// the page, merchants, claim counts and balance are four pgx queries.
func bareCatalog(b *Bench, partnerID uuid.UUID) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		userID, err := uuid.Parse(r.Header.Get("X-User-Id"))
		if err != nil {
			http.Error(w, "user", http.StatusBadRequest)
			return
		}
		now := time.Now().UTC()
		rows, err := b.DB.Pool.Query(ctx, `SELECT id, sku, title, cost_points, stock_total, claimed_count, per_user_limit,
				claimable_from, claimable_until, countries, code_source, codes_available, position
			FROM gifts WHERE partner_id = $1 AND retired_at IS NULL
			  AND (visible_from IS NULL OR visible_from <= $2) AND (visible_until IS NULL OR visible_until > $2)
			ORDER BY position, sku LIMIT 21`, partnerID, now)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		var gifts []*bareGift
		ids := []string{}
		for rows.Next() {
			g := &bareGift{}
			gg := &g.gift
			if err := rows.Scan(&gg.ID, &gg.SKU, &gg.Title, &gg.CostPoints, &gg.StockTotal, &gg.ClaimedCount, &gg.PerUserLimit,
				&gg.ClaimableFrom, &gg.ClaimableUntil, &gg.Countries, &gg.CodeSource, &gg.CodesAvailable, &gg.Position); err != nil {
				rows.Close()
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			gifts = append(gifts, g)
			ids = append(ids, gg.ID.String())
		}
		if err := rows.Err(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		hasNext := len(gifts) > 20
		if hasNext {
			gifts, ids = gifts[:20], ids[:20]
		}
		byID := map[uuid.UUID]*bareGift{}
		for _, g := range gifts {
			byID[g.gift.ID] = g
		}
		rows, err = b.DB.Pool.Query(ctx, `SELECT gm.gift_id, m.id, m.name, m.enabled FROM gift_merchants gm
			JOIN merchants m ON m.partner_id = gm.partner_id AND m.id = gm.merchant_id
			WHERE gm.partner_id = $1 AND gm.gift_id = ANY($2::uuid[]) ORDER BY m.code`, partnerID, ids)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		var gid uuid.UUID
		var m merchant.Merchant
		if _, err := pgx.ForEachRow(rows, []any{&gid, &m.ID, &m.Name, &m.Enabled}, func() error {
			byID[gid].merchants = append(byID[gid].merchants, m)
			return nil
		}); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		claims := map[uuid.UUID]int{}
		rows, err = b.DB.Pool.Query(ctx, `SELECT gift_id, claims FROM gift_claim_counters WHERE partner_id = $1 AND user_id = $2 AND gift_id = ANY($3::uuid[])`,
			partnerID, userID, ids)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		var n int
		if _, err := pgx.ForEachRow(rows, []any{&gid, &n}, func() error { claims[gid] = n; return nil }); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		var balance int64
		err = b.DB.Pool.QueryRow(ctx, `SELECT points FROM balances WHERE partner_id = $1 AND user_id = $2`, partnerID, userID).Scan(&balance)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		country := "SG"
		type edge struct {
			Cursor string    `json:"cursor"`
			Node   *bareGift `json:"node"`
		}
		edges := make([]edge, 0, len(gifts))
		var end *string
		for _, g := range gifts {
			gg := &g.gift
			g.ID, g.SKU, g.Title, g.CostPoints, g.Stock = gg.ID, gg.SKU, gg.Title, gg.CostPoints, gg.Remaining()
			g.ClaimedByMe = claims[gg.ID]
			code := gg.Availability(now, catalog.Viewer{Country: &country, Balance: balance, Claims: g.ClaimedByMe})
			g.CanClaim = code == ""
			if code != "" {
				s := string(code)
				g.Reason = &s
			}
			g.Redemption = "ONLINE"
			if len(g.merchants) > 0 {
				g.Redemption = "MERCHANT"
			}
			g.Merchants = []bareMerchant{}
			for _, m := range g.merchants {
				if m.Enabled {
					g.Merchants = append(g.Merchants, bareMerchant{ID: m.ID, Name: m.Name})
				}
			}
			c := catalog.Cursor{Position: gg.Position, SKU: gg.SKU}.Encode()
			edges = append(edges, edge{Cursor: c, Node: g})
			end = &c
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"data": map[string]any{"catalog": map[string]any{
			"edges": edges, "pageInfo": map[string]any{"hasNextPage": hasNext, "endCursor": end},
		}}})
	})
}
