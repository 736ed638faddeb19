package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/catalog"
	"github.com/perkshq/perks/internal/idempotency"
	"github.com/perkshq/perks/internal/voucher"
)

func init() {
	register(Scenario{Name: "claim", Run: runClaim})
}

// Claim storm shape (issue 4): 500 users claiming from 10 gifts at 64
// concurrent clients.
const (
	claimUsers   = 500
	claimGifts   = 10
	claimClients = 64
	// poolCodes is each pool gift's stock and code pool.
	poolCodes = 20_000
)

// runClaim measures claimGift over GraphQL (token verification, the
// idempotency key, the claim transaction, the voucher read back) against a
// bare pgx transaction running the claim's own statements, then checks the
// ledger and catalog invariants.
func runClaim(ctx context.Context, b *Bench) ([]Row, error) {
	users, err := provisionConsumers(ctx, b, "claim-", claimUsers, 100_000_000)
	if err != nil {
		return nil, err
	}
	p, err := b.App.Partners.BySlug(ctx, b.DB.Bun, "acme")
	if err != nil {
		return nil, err
	}
	// Ten gifts: pool, generated and online; two with a small stock so the
	// storm also races for the last units.
	gifts := make([]*catalog.Gift, claimGifts)
	err = b.DB.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		for i := range gifts {
			in := catalog.GiftInput{Title: fmt.Sprintf("Storm gift %d", i), CostPoints: int64(10 + i), Category: "storm", Position: 1000 + i}
			switch i % 3 {
			case 0:
				in.CodeSource, in.Stock = catalog.SourcePool, ptr(poolCodes)
			case 1:
				in.CodeSource, in.CodePattern = catalog.SourceGenerated, fmt.Sprintf("S%d-XXXX-####-XX", i)
			default:
				in.CodeSource = catalog.SourceNone
			}
			if i >= claimGifts-2 {
				in.Stock = ptr(100)
			}
			g, _, err := b.App.Catalog.PutGiftTx(ctx, tx, p.ID, fmt.Sprintf("storm-%d", i), in)
			if err != nil {
				return err
			}
			gifts[i] = g
			if in.CodeSource == catalog.SourcePool {
				codes := make([]string, poolCodes)
				for j := range codes {
					codes[j] = fmt.Sprintf("STORM%d-%07d", i, j)
				}
				if _, err := b.App.Catalog.UploadCodesTx(ctx, tx, p.ID, g.SKU, codes); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}

	var claimed, refused atomic.Int64
	start := time.Now()
	rate, p50, p99, err := Load(ctx, claimClients, b.Duration, func(ctx context.Context, c, i int) error {
		u := users[(i*claimClients+c)%claimUsers]
		g := gifts[(i+c)%claimGifts]
		body, _ := json.Marshal(map[string]any{
			"query":     `mutation($g: ID!, $k: String!) { claimGift(giftId: $g, idempotencyKey: $k) { balance voucher { id code status } } }`,
			"variables": map[string]any{"g": g.ID.String(), "k": fmt.Sprintf("storm-%d-%d", c, i)},
		})
		code, err := postGraphQL(ctx, b, u.Token, body)
		switch {
		case err != nil:
			return err
		case code == "":
			claimed.Add(1)
		case code == "OUT_OF_STOCK" || code == "CODES_EXHAUSTED":
			refused.Add(1)
		default:
			return fmt.Errorf("claim refused with %s", code)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	elapsed := time.Since(start)
	if err := voucher.CheckInvariants(ctx, b.DB.Bun); err != nil {
		return nil, fmt.Errorf("after the claim storm: %w", err)
	}
	out := []Row{{
		Scenario: "claim", Variant: "API claimGift (GraphQL)", Clients: claimClients, Rate: float64(claimed.Load()) / elapsed.Seconds(), Unit: "claims/s",
		P50: p50, P99: p99,
		Note: fmt.Sprintf("%.0f req/s; %d claimed, %d OUT_OF_STOCK; invariants hold", rate, claimed.Load(), refused.Load()),
	}}

	// The same claim statements over bare pgx, on the same gifts in the
	// same order: gift snapshot (refusing a sold-out gift at once),
	// idempotency key, counter, burn, code, voucher, event, unit of stock
	// (last, as the API), idempotency record.
	var bareClaimed, bareRefused atomic.Int64
	start = time.Now()
	_, bp50, bp99, err := Load(ctx, claimClients, b.Duration, func(ctx context.Context, c, i int) error {
		ok, err := bareClaim(ctx, b, p.ID, users[(i*claimClients+c)%claimUsers].ID, gifts[(i+c)%claimGifts], fmt.Sprintf("bare-%d-%d", c, i), int16(c%catalog.GiftSlots))
		switch {
		case err != nil:
			return err
		case ok:
			bareClaimed.Add(1)
		default:
			bareRefused.Add(1)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	bare := float64(bareClaimed.Load()) / time.Since(start).Seconds()
	if err := voucher.CheckInvariants(ctx, b.DB.Bun); err != nil {
		return nil, fmt.Errorf("after the bare claims: %w", err)
	}
	out = append(out, Row{Scenario: "claim", Variant: "bare pgx (the claim's SQL)", Clients: claimClients, Rate: bare, Unit: "claims/s", P50: bp50, P99: bp99,
		Note: fmt.Sprintf("API/bare = %.2f; %d refused; invariants hold", out[0].Rate/bare, bareRefused.Load())})
	return out, nil
}

// bareClaim is one claim in plain SQL, writing rows consistent with the
// API's (so the invariants still hold after). It reports false, having
// rolled back, when the gift has no unit or code left.
func bareClaim(ctx context.Context, b *Bench, partnerID, userID uuid.UUID, g *catalog.Gift, key string, slot int16) (bool, error) {
	tx, err := b.DB.Pool.Begin(ctx)
	if err != nil {
		return false, err
	}
	defer tx.Rollback(ctx) //nolint:errcheck
	now := time.Now().UTC()
	// The snapshot read and its cheap refusal, as the API does first.
	var left bool
	if err := tx.QueryRow(ctx, `SELECT retired_at IS NULL
			AND (stock_total IS NULL OR claimed_count + coalesce((SELECT sum(claimed) FROM gift_claim_slots s WHERE s.partner_id = g.partner_id AND s.gift_id = g.id), 0) < stock_total)
			AND (code_source <> 'pool' OR codes_available - coalesce((SELECT sum(pool_taken) FROM gift_claim_slots s WHERE s.partner_id = g.partner_id AND s.gift_id = g.id), 0) > 0)
		FROM gifts g WHERE partner_id = $1 AND id = $2`, partnerID, g.ID).Scan(&left); err != nil {
		return false, err
	}
	if !left {
		return false, nil
	}
	fullKey := "user:" + userID.String() + ":" + key
	if _, err := tx.Exec(ctx, `INSERT INTO idempotency_keys (partner_id, key, request_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)`,
		partnerID, fullKey, idempotency.Fingerprint([]byte(key)), now, now.Add(idempotency.Retention)); err != nil {
		return false, err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO gift_claim_counters AS c (partner_id, user_id, gift_id, claims) VALUES ($1, $2, $3, 1)
		ON CONFLICT (partner_id, user_id, gift_id) DO UPDATE SET claims = c.claims + 1`, partnerID, userID, g.ID); err != nil {
		return false, err
	}
	var balance int64
	if err := tx.QueryRow(ctx, `UPDATE balances SET points = points - $1, updated_at = $2 WHERE partner_id = $3 AND user_id = $4 AND points >= $1 RETURNING points`,
		g.CostPoints, now, partnerID, userID).Scan(&balance); err != nil {
		return false, err
	}
	id := uuid.New()
	var entryID int64
	if err := tx.QueryRow(ctx, `INSERT INTO ledger_entries (partner_id, user_id, kind, points, balance_after, reason, source_type, source_id, occurred_at)
		VALUES ($1, $2, 'burn', $3, $4, $5, 'voucher', $6, $7) RETURNING id`,
		partnerID, userID, -g.CostPoints, balance, "Claimed: "+g.Title, id.String(), now).Scan(&entryID); err != nil {
		return false, err
	}
	var allocated int64
	if err := tx.QueryRow(ctx, `SELECT ledger_consume_lots($1, $2, $3, $4)`, partnerID, userID, g.CostPoints, entryID).Scan(&allocated); err != nil {
		return false, err
	}
	var code *string
	switch g.CodeSource {
	case catalog.SourcePool:
		var c string
		err := tx.QueryRow(ctx, `UPDATE gift_codes SET assigned_at = $1 WHERE partner_id = $2 AND code = (
			SELECT code FROM gift_codes WHERE partner_id = $2 AND gift_id = $3 AND assigned_at IS NULL
			ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING code`, now, partnerID, g.ID).Scan(&c)
		if errors.Is(err, pgx.ErrNoRows) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		code = &c
	case catalog.SourceGenerated:
		c, err := catalog.Pattern(*g.CodePattern).Generate()
		if err != nil {
			return false, err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO gift_codes (partner_id, code, gift_id, source, created_at, assigned_at) VALUES ($1, $2, $3, 'generated', $4, $4)`,
			partnerID, c, g.ID, now); err != nil {
			return false, err
		}
		code = &c
	}
	if _, err := tx.Exec(ctx, `INSERT INTO vouchers (partner_id, id, gift_id, user_id, code, status, cost_points, burn_entry_id, claimed_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, 'claimed', $6, $7, $8, $8)`, partnerID, id, g.ID, userID, code, g.CostPoints, entryID, now); err != nil {
		return false, err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO events (partner_id, id, type, user_id, data, created_at) VALUES ($1, $2, 'voucher.claimed', $3, $4, $5)`,
		partnerID, uuid.New(), userID, fmt.Sprintf(`{"voucherId":%q,"entryId":%d}`, id, entryID), now); err != nil {
		return false, err
	}
	// The unit from one of the gift's claim slots, as the API takes it.
	var took bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT FROM gift_take_unit($1, $2, $3, $4))`,
		partnerID, g.ID, slot, g.CodeSource == catalog.SourcePool).Scan(&took); err != nil {
		return false, err
	}
	if !took {
		return false, nil
	}
	if _, err := tx.Exec(ctx, `UPDATE idempotency_keys SET response_status = 200, response_body = $1, user_id = $2 WHERE partner_id = $3 AND key = $4`,
		[]byte(fmt.Sprintf(`{"voucherId":%q,"balance":%d}`, id, balance)), userID, partnerID, fullKey); err != nil {
		return false, err
	}
	return true, tx.Commit(ctx)
}

func ptr[T any](v T) *T { return &v }
