package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/perkshq/perks/internal/ledger"
	"github.com/perkshq/perks/internal/partner"
	"github.com/perkshq/perks/internal/program"
)

func init() {
	register(Scenario{Name: "expiry", Run: runExpiry})
	heavy["expiry"] = true
}

// The expiry fixture: expiryUsers users with expiryLotsPerUser due lots
// each, on a partner of its own.
const (
	expiryUsers       = 100_000
	expiryLotsPerUser = 10
)

// runExpiry loads a million due lots with COPY (users, their earn entries
// with running balances, the balances, and one lot per entry, all past
// their expiry, a third of them partly spent) and runs ledger.LotsWorker
// once, as the periodic job would: lots/s, the Go heap's peak during the
// run (runtime.MemStats sampled every 20 ms; the job holds one batch at a
// time, so it should not grow with the number of lots), then checks
// that every lot expired once, with one points.expired event each, and
// ledger.CheckInvariants.
func runExpiry(ctx context.Context, b *Bench) ([]Row, error) {
	p, err := b.App.Partners.Upsert(ctx, b.DB.Bun, partner.CreateParams{Slug: "bench-expiry", Name: "Bench expiry"})
	if err != nil {
		return nil, err
	}
	fmt.Fprintln(os.Stderr, "seeding 1,000,000 due lots...")
	t0 := time.Now()
	// The lots expire tomorrow and the job runs with a clock three days
	// ahead: the app's own periodic LotsWorker (running in this process)
	// leaves them alone, and the partner's policy sends no warnings, so
	// the warning job does not touch them either.
	if _, err := b.App.Program.Put(ctx, b.DB.Bun, p.ID, program.Input{ExpiryMode: program.ExpiryNone, NegativeBalance: program.NegativeForbid}); err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	if err := seedExpiry(ctx, b, p.ID, now); err != nil {
		return nil, fmt.Errorf("seed expiry: %w", err)
	}
	fmt.Fprintf(os.Stderr, "seeded in %s\n", time.Since(t0).Round(time.Second))

	var out []Row
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	idle := ms.HeapAlloc
	var peak atomic.Uint64
	peak.Store(idle)
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				if m.HeapAlloc > peak.Load() {
					peak.Store(m.HeapAlloc)
				}
			}
		}
	}()
	at := now.Add(72 * time.Hour)
	// BENCH_EXPIRY_BATCH compares batch sizes (default ledger.LotsBatch).
	batch := ledger.LotsBatch
	if v, err := strconv.Atoi(os.Getenv("BENCH_EXPIRY_BATCH")); err == nil && v > 0 {
		batch = v
	}
	job := &ledger.LotsWorker{DB: b.DB.Bun, Events: b.App.Events, Now: func() time.Time { return at }, Batch: batch}
	start := time.Now()
	_, expired, err := job.Run(ctx)
	elapsed := time.Since(start)
	close(stop)
	<-sampled
	if err != nil {
		return nil, err
	}
	want := expiryUsers * expiryLotsPerUser
	var events, open int
	if err := b.DB.Pool.QueryRow(ctx, "SELECT count(*) FROM events WHERE partner_id = $1 AND type = 'points.expired'", p.ID).Scan(&events); err != nil {
		return nil, err
	}
	if err := b.DB.Pool.QueryRow(ctx, "SELECT count(*) FROM point_lots WHERE partner_id = $1 AND open", p.ID).Scan(&open); err != nil {
		return nil, err
	}
	// A third of the lots were partly spent, none whole: every lot expires.
	if expired != want || events != want || open != 0 {
		return nil, fmt.Errorf("expired %d lots with %d events (%d left open), want %d", expired, events, open, want)
	}
	t1 := time.Now()
	if err := ledger.CheckInvariants(ctx, b.DB.Bun); err != nil {
		return nil, fmt.Errorf("after expiry: %w", err)
	}
	fmt.Fprintf(os.Stderr, "invariants checked in %s\n", time.Since(t1).Round(time.Second))
	out = append(out, Row{Scenario: "expiry", Variant: fmt.Sprintf("LotsWorker.Run, %d due lots, batch %d", want, batch), Rate: float64(expired) / elapsed.Seconds(), Unit: "lots/s",
		Note: fmt.Sprintf("%s; peak heap %d MiB (idle %d MiB); 1 event per lot; invariants hold", elapsed.Round(time.Millisecond), peak.Load()>>20, idle>>20)})
	return out, nil
}

// seedExpiry writes the fixture with COPY: for each user, expiryLotsPerUser
// earn entries of 10-100 points (balance_after their running sum) that
// became available 60 days ago and expire over tomorrow, a burn of
// part of the first lot for every third user (with its allocation), the
// balance, and one lot per earn. Entry ids are taken from the sequence
// first so lots and allocations can name them.
func seedExpiry(ctx context.Context, b *Bench, partnerID uuid.UUID, now time.Time) error {
	const lots = expiryUsers * expiryLotsPerUser
	burns := (expiryUsers + 2) / 3
	// Reserve the entry ids (earns and burns): nothing else writes entries
	// while a scenario runs.
	var first int64
	if err := b.DB.Pool.QueryRow(ctx, `SELECT setval(pg_get_serial_sequence('ledger_entries', 'id'),
		nextval(pg_get_serial_sequence('ledger_entries', 'id')) + $1) - $1`, lots+burns).Scan(&first); err != nil {
		return err
	}
	avail := now.Add(-60 * 24 * time.Hour)
	users := make([][]any, 0, expiryUsers)
	bals := make([][]any, 0, expiryUsers)
	ents := make([][]any, 0, lots+burns)
	pls := make([][]any, 0, lots)
	allocs := make([][]any, 0, burns)
	next, lotID := first, int64(0)
	if err := b.DB.Pool.QueryRow(ctx, `SELECT coalesce(max(id), 0) FROM point_lots`).Scan(&lotID); err != nil {
		return err
	}
	for i := 0; i < expiryUsers; i++ {
		id := uuid.New()
		ext := "x-" + strconv.Itoa(i)
		users = append(users, []any{partnerID, id, b.App.Keys.LookupHash("user:"+partnerID.String(), ext), ext})
		var bal, earned int64
		var firstLot, firstPts int64
		for k := 0; k < expiryLotsPerUser; k++ {
			pts := int64(10 + (i*7+k*13)%91)
			bal += pts
			earned += pts
			at := avail.Add(time.Duration(k) * time.Minute)
			exp := now.Add(24*time.Hour + time.Duration((i*expiryLotsPerUser+k)%1440)*time.Minute)
			ents = append(ents, []any{partnerID, next, id, "earn", pts, bal, "Purchase", at, at})
			lotID++
			pls = append(pls, []any{partnerID, lotID, id, next, pts, pts, at, exp, at})
			if k == 0 {
				firstLot, firstPts = lotID, pts
			}
			next++
		}
		if i%3 == 0 {
			spent := firstPts / 2
			bal -= spent
			at := avail.Add(time.Hour)
			ents = append(ents, []any{partnerID, next, id, "burn", -spent, bal, "Gift", at, at})
			allocs = append(allocs, []any{partnerID, next, firstLot, spent})
			pls[len(pls)-expiryLotsPerUser][5] = firstPts - spent
			next++
		}
		bals = append(bals, []any{partnerID, id, bal, earned})
	}
	copies := []struct {
		table string
		cols  []string
		rows  [][]any
	}{
		{"users", []string{"partner_id", "id", "external_id_hash", "external_id"}, users},
		{"balances", []string{"partner_id", "user_id", "points", "lifetime_earned"}, bals},
		{"ledger_entries", []string{"partner_id", "id", "user_id", "kind", "points", "balance_after", "reason", "occurred_at", "created_at"}, ents},
		{"point_lots", []string{"partner_id", "id", "user_id", "source_entry_id", "points", "remaining", "available_at", "expires_at", "created_at"}, pls},
		{"lot_allocations", []string{"partner_id", "entry_id", "lot_id", "points"}, allocs},
	}
	for _, c := range copies {
		if _, err := b.DB.Pool.CopyFrom(ctx, pgx.Identifier{c.table}, c.cols, pgx.CopyFromRows(c.rows)); err != nil {
			return fmt.Errorf("copy %s: %w", c.table, err)
		}
	}
	if _, err := b.DB.Pool.Exec(ctx, `SELECT setval(pg_get_serial_sequence('point_lots', 'id'), $1)`, lotID); err != nil {
		return err
	}
	if _, err := b.DB.Pool.Exec(ctx, "VACUUM ANALYZE users, balances, ledger_entries, point_lots, lot_allocations"); err != nil {
		return err
	}
	_, err := b.DB.Pool.Exec(ctx, "CHECKPOINT")
	return err
}
