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
	"github.com/jackc/pgx/v5"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/auth"
	"github.com/perkshq/perks/internal/campaign"
	"github.com/perkshq/perks/internal/earning"
	"github.com/perkshq/perks/internal/ledger"
	"github.com/perkshq/perks/internal/partner"
	"github.com/perkshq/perks/internal/tier"
)

func init() {
	register(Scenario{Name: "earn_program", Run: runEarnProgram})
}

// programUsers is how many users each of the two partners of earn_program
// spreads its load over.
const programUsers = 20000

// programAmount is the amount every earn_program earn sends (minor units):
// 15 base points at 1 point per 1.00.
const programAmount = 1500

// programTotal is what one earn of programAmount awards on the program
// partner: 15 base, +7 for the x1.5 tier (rounded down), +22 for the x2
// campaign on the 22 points after the tier, +5 for the SG bonus.
const programTotal = 49

// benchPartner is a partner of the earn_program scenario.
type benchPartner struct {
	p      *partner.Partner
	secret []byte
	prefix string // of its users' external ids
}

// runEarnProgram measures what the program rules cost an earn (issue 14):
// the same API earn as the earn scenario (POST /integrations/actions,
// HMAC-signed, with an Idempotency-Key, an amount of 15.00 on a rule of 1
// point per 1.00) on two partners that differ only by their program. The
// program partner places every user in a x1.5 tier (its base tier; a
// second tier at a threshold nobody reaches keeps the evaluation honest)
// and runs two campaigns with conditions and budgets, both matching every
// earn: x2 when `has(earn.amount) && earn.amount >= 1000`, and a bonus of
// 5 when `user.country == 'SG'`. The plain partner has neither. A third
// partner has the same program with campaigns without budgets. Runs
// alternate plain, budgeted, unbudgeted, plain, ... (two rounds) at each
// client count so that the order (checkpoints, autovacuum, the other
// tenants of the machine) weighs on all alike; the cost is the extra time
// per earn, plain rate ÷ program rate − 1, over the two rounds. After the load it checks the
// ledger invariants, that every program earn got all three steps, and
// that each campaign's spent_points equals the sum of its awards in the
// entries' breakdowns.
func runEarnProgram(ctx context.Context, b *Bench) ([]Row, error) {
	plain, err := setupProgramPartner(ctx, b, "bench-plain", false, false)
	if err != nil {
		return nil, fmt.Errorf("plain partner: %w", err)
	}
	prog, err := setupProgramPartner(ctx, b, "bench-program", true, true)
	if err != nil {
		return nil, fmt.Errorf("program partner: %w", err)
	}
	// The same program with unbudgeted campaigns: a budget locks its
	// campaign's row until the earn commits, so every earn of a budgeted
	// campaign waits for the one before it; this row tells that
	// serialisation from the rules' own work.
	free, err := setupProgramPartner(ctx, b, "bench-nobudget", true, false)
	if err != nil {
		return nil, fmt.Errorf("no-budget partner: %w", err)
	}

	earn := func(bp *benchPartner, clients, round int) (float64, time.Duration, time.Duration, error) {
		return Load(ctx, clients, b.Duration, func(ctx context.Context, c, i int) error {
			n := i*clients + c
			body := []byte(`{"externalUserId":"` + bp.prefix + strconv.Itoa(n%programUsers) + `","action":"purchase","amount":` + strconv.Itoa(programAmount) + `}`)
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, b.URL+"/integrations/actions", bytes.NewReader(body))
			ts := strconv.FormatInt(time.Now().Unix(), 10)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Partner-Slug", bp.p.Slug)
			req.Header.Set("X-Signature", "t="+ts+",v1="+auth.SignV1(bp.secret, ts, body))
			req.Header.Set("Idempotency-Key", fmt.Sprintf("%s-%d-%d-%d-%d", bp.prefix, clients, round, c, i))
			res, err := b.Client.Do(req)
			if err != nil {
				return err
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusCreated {
				return fmt.Errorf("%s earn answered %d", bp.p.Slug, res.StatusCode)
			}
			return nil
		})
	}

	var out []Row
	for _, clients := range []int{16, 64} {
		variants := []string{"plain earn (no tiers, no campaigns)", "program earn (x1.5 tier + 2 budgeted campaigns)", "program earn, campaigns without budgets"}
		var sum [3]float64 // rates over the rounds
		var idx [3]int     // each variant's last row
		for round := 0; round < 2; round++ {
			var plainRate float64
			for k, bp := range []*benchPartner{plain, prog, free} {
				rate, p50, p99, err := earn(bp, clients, round)
				if err != nil {
					return nil, err
				}
				sum[k] += rate
				r := Row{Scenario: "earn_program", Variant: fmt.Sprintf("%s, round %d", variants[k], round+1), Clients: clients, Rate: rate, Unit: "req/s", P50: p50, P99: p99}
				if k == 0 {
					plainRate = rate
				} else {
					r.Note = fmt.Sprintf("cost +%.0f%% per earn", (plainRate/rate-1)*100)
				}
				idx[k] = len(out)
				out = append(out, r)
			}
		}
		for k := 1; k < 3; k++ {
			out[idx[k]].Note += fmt.Sprintf("; both rounds +%.0f%%", (sum[0]/sum[k]-1)*100)
		}
	}

	if err := ledger.CheckInvariants(ctx, b.DB.Bun); err != nil {
		return nil, fmt.Errorf("after earn_program load: %w", err)
	}
	for _, bp := range []*benchPartner{prog, free} {
		if err := checkProgramEarns(ctx, b, bp.p.ID, bp == prog); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// setupProgramPartner creates a partner with an HMAC secret, the rule
// `purchase` (1 point per 1.00) and programUsers users in SG; with program
// it also sets the tiers and the two campaigns, with budgets when asked.
func setupProgramPartner(ctx context.Context, b *Bench, slug string, program, budgets bool) (*benchPartner, error) {
	a := b.App
	bp := &benchPartner{secret: []byte(slug + "-hmac-secret"), prefix: slug + "-"}
	per := int64(100)
	err := b.DB.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		p, err := a.Partners.Upsert(ctx, tx, partner.CreateParams{Slug: slug, Name: "Bench " + slug})
		if err != nil {
			return err
		}
		bp.p = p
		if _, err := a.Partners.AddSharedSecret(ctx, tx, p.ID, partner.KindHMAC, "bench", bp.secret); err != nil {
			return err
		}
		if _, _, err := a.Earning.PutRule(ctx, tx, p.ID, "purchase", earning.RuleInput{
			Name: "Purchase", Points: 1, PointsPerAmount: &per, Enabled: true,
		}); err != nil {
			return err
		}
		if !program {
			return nil
		}
		if _, err := a.Tiers.PutTx(ctx, tx, p.ID, []tier.Input{
			{Code: "silver", Name: "Silver", Threshold: 0, Multiplier: 150},
			{Code: "gold", Name: "Gold", Threshold: 1_000_000_000, Multiplier: 200},
		}); err != nil {
			return err
		}
		var budget *int64
		if budgets {
			max := int64(campaign.MaxBudget)
			budget = &max
		}
		x2, bonus := 200, int64(5)
		for code, in := range map[string]campaign.Input{
			"big-basket": {Name: "Double points on baskets of 10.00 or more", MultiplierHundredths: &x2,
				Condition: "has(earn.amount) && earn.amount >= 1000", BudgetPoints: budget, Stacking: campaign.StackAdditive, Enabled: true},
			"sg-bonus": {Name: "Singapore bonus", BonusPoints: &bonus,
				Condition: "user.country == 'SG'", BudgetPoints: budget, Stacking: campaign.StackAdditive, Enabled: true},
		} {
			if _, _, err := a.Campaigns.PutTx(ctx, tx, p.ID, code, in); err != nil {
				return fmt.Errorf("campaign %s: %w", code, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	rows := make([][]any, programUsers)
	for i := range rows {
		ext := bp.prefix + strconv.Itoa(i)
		rows[i] = []any{bp.p.ID, uuid.New(), a.Keys.LookupHash("user:"+bp.p.ID.String(), ext), ext, "SG"}
	}
	if _, err := b.DB.Pool.CopyFrom(ctx, pgx.Identifier{"users"}, []string{"partner_id", "id", "external_id_hash", "external_id", "country_code"}, pgx.CopyFromRows(rows)); err != nil {
		return nil, err
	}
	return bp, nil
}

// checkProgramEarns checks that the bench measured the rules it claims
// (every earn of the program partner got the tier and both campaigns: 49
// points) and that each campaign's budget is exact: what it spent equals the
// sum of its awards recorded in the entries' breakdowns.
func checkProgramEarns(ctx context.Context, b *Bench, partnerID uuid.UUID, budgets bool) error {
	var total, off int64
	if err := b.DB.Pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE points <> $2) FROM ledger_entries WHERE partner_id = $1 AND kind = 'earn'`,
		partnerID, programTotal).Scan(&total, &off); err != nil {
		return err
	}
	if total == 0 || off != 0 {
		return fmt.Errorf("earn_program: %d of %d program earns did not award %d points", off, total, programTotal)
	}
	if !budgets {
		return nil
	}
	// What a campaign spent is its row's spent_points plus its budget
	// slots' (issue 14's campaign_budget_slots).
	rows, err := b.DB.Pool.Query(ctx, `SELECT c.code, c.spent_points + coalesce((SELECT sum(bs.spent) FROM campaign_budget_slots bs
			WHERE bs.partner_id = c.partner_id AND bs.code = c.code), 0), coalesce(s.awarded, 0)
		FROM campaigns c LEFT JOIN (
			SELECT st->>'code' AS code, sum((st->>'points')::bigint) AS awarded
			FROM ledger_entries e, jsonb_array_elements(e.breakdown->'steps') st
			WHERE e.partner_id = $1 AND st->>'kind' = 'campaign' GROUP BY 1
		) s ON s.code = c.code
		WHERE c.partner_id = $1 ORDER BY c.code`, partnerID)
	if err != nil {
		return err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var code string
		var spent, awarded int64
		if err := rows.Scan(&code, &spent, &awarded); err != nil {
			return err
		}
		if spent != awarded || spent == 0 {
			return fmt.Errorf("earn_program: campaign %s spent %d but its awards sum to %d", code, spent, awarded)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if n != 2 {
		return fmt.Errorf("earn_program: %d campaigns, want 2", n)
	}
	return nil
}
