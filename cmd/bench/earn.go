package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/perkshq/perks/internal/auth"
	"github.com/perkshq/perks/internal/demo"
	"github.com/perkshq/perks/internal/ledger"
)

func init() {
	register(Scenario{Name: "earn", Run: runEarn})
}

// earnUsers is how many distinct users the earn scenario spreads load over.
const earnUsers = 20000

// runEarn measures POST /integrations/actions (HMAC-signed, with an
// Idempotency-Key, distinct users) against a bare pgx loop doing the same
// minimal SQL in one transaction: update the balance, insert the entry,
// insert the event.
func runEarn(ctx context.Context, b *Bench) ([]Row, error) {
	acme := b.App
	p, err := acme.Partners.BySlug(ctx, b.DB.Bun, "acme")
	if err != nil {
		return nil, err
	}
	if err := ensureEarnUsers(ctx, b); err != nil {
		return nil, err
	}
	ids := make([]uuid.UUID, earnUsers)
	for i := range ids {
		ext := "bench-" + strconv.Itoa(i)
		if err := b.DB.Pool.QueryRow(ctx, "SELECT id FROM users WHERE partner_id = $1 AND external_id = $2", p.ID, ext).Scan(&ids[i]); err != nil {
			return nil, fmt.Errorf("bench user %s: %w", ext, err)
		}
	}

	secret := []byte(demo.Acme.HMACSecret)
	var out []Row
	for _, clients := range []int{16, 64} {
		rate, p50, p99, err := Load(ctx, clients, b.Duration, func(ctx context.Context, c, i int) error {
			n := i*clients + c
			body := []byte(`{"externalUserId":"bench-` + strconv.Itoa(n%earnUsers) + `","action":"purchase","points":7}`)
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, b.URL+"/integrations/actions", bytes.NewReader(body))
			ts := strconv.FormatInt(time.Now().Unix(), 10)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Partner-Slug", "acme")
			req.Header.Set("X-Signature", "t="+ts+",v1="+auth.SignV1(secret, ts, body))
			req.Header.Set("Idempotency-Key", fmt.Sprintf("bench-%d-%d-%d", clients, c, i))
			res, err := b.Client.Do(req)
			if err != nil {
				return err
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusCreated {
				return fmt.Errorf("earn answered %d", res.StatusCode)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		out = append(out, Row{Scenario: "earn", Variant: "API POST /integrations/actions", Clients: clients, Rate: rate, Unit: "req/s", P50: p50, P99: p99})

		bare, bp50, bp99, err := Load(ctx, clients, b.Duration, func(ctx context.Context, c, i int) error {
			u := ids[(i*clients+c)%earnUsers]
			tx, err := b.DB.Pool.Begin(ctx)
			if err != nil {
				return err
			}
			defer tx.Rollback(ctx) //nolint:errcheck
			var bal int64
			if err := tx.QueryRow(ctx, `INSERT INTO balances AS b (partner_id, user_id, points, lifetime_earned) VALUES ($1, $2, 7, 7)
				ON CONFLICT (partner_id, user_id) DO UPDATE SET points = b.points + 7, lifetime_earned = b.lifetime_earned + 7 RETURNING points`, p.ID, u).Scan(&bal); err != nil {
				return err
			}
			var id int64
			if err := tx.QueryRow(ctx, `INSERT INTO ledger_entries (partner_id, user_id, kind, points, balance_after, reason, action_code, occurred_at)
				VALUES ($1, $2, 'earn', 7, $3, 'Purchase', 'purchase', now()) RETURNING id`, p.ID, u, bal).Scan(&id); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO point_lots (partner_id, user_id, source_entry_id, points, remaining, available_at)
				VALUES ($1, $2, $3, 7, 7, now())`, p.ID, u, id); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO events (partner_id, type, user_id, data) VALUES ($1, 'points.earned', $2, $3)`,
				p.ID, u, fmt.Sprintf(`{"userId":%q,"entryId":%d,"points":7,"balance":%d}`, u, id, bal)); err != nil {
				return err
			}
			return tx.Commit(ctx)
		})
		if err != nil {
			return nil, err
		}
		out = append(out, Row{Scenario: "earn", Variant: "bare pgx (same SQL)", Clients: clients, Rate: bare, Unit: "tx/s", P50: bp50, P99: bp99,
			Note: fmt.Sprintf("API/bare = %.2f", rate/bare)})
	}
	if err := ledger.CheckInvariants(ctx, b.DB.Bun); err != nil {
		return nil, fmt.Errorf("after earn load: %w", err)
	}
	return out, nil
}
