package ledger_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/event"
	"github.com/perkshq/perks/internal/keyring"
	"github.com/perkshq/perks/internal/ledger"
	"github.com/perkshq/perks/internal/partner"
	"github.com/perkshq/perks/internal/user"
)

// events returns the data of the events of a type, oldest first.
func events(t *testing.T, db bun.IDB, typ string) []map[string]any {
	t.Helper()
	var raw []json.RawMessage
	require.NoError(t, db.NewRaw("SELECT data FROM events WHERE type = ? ORDER BY created_at, data->>'entryId'", typ).Scan(context.Background(), &raw))
	out := make([]map[string]any, len(raw))
	for i, r := range raw {
		require.NoError(t, json.Unmarshal(r, &out[i]))
	}
	return out
}

// TestHeldLotNeverActivatedByJob: a held earn (no date) stays pending
// however far the clock travels; the invariants hold and a confirm then
// activates it.
func TestHeldLotNeverActivatedByJob(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupTx(t)
	e := b.apply(t, ledger.Change{Kind: ledger.KindEarn, Points: 40, Reason: "held", Reference: "order-1", Held: true})
	require.Equal(t, ledger.KindPending, e.Kind)
	require.Nil(t, e.PendingUntil)
	dated := b.apply(t, ledger.Change{Kind: ledger.KindEarn, Points: 5, Reason: "dated", AvailableAt: b.now.Add(time.Hour)})
	require.Equal(t, ledger.KindPending, dated.Kind)
	require.NotNil(t, dated.PendingUntil)

	w := &ledger.LotsWorker{DB: b.tx, Now: func() time.Time { return b.now.AddDate(100, 0, 0) }}
	// The worker runs each batch in its own (nested: savepoint) tx.
	activated, _, err := w.Run(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, activated, "only the dated lot")
	bal, err := b.ledger.BalanceOf(ctx, b.tx, b.partner, b.user)
	require.NoError(t, err)
	require.Equal(t, int64(5), bal.Points)
	require.Equal(t, int64(40), bal.PendingPoints)
	lots, err := b.ledger.Lots(ctx, b.tx, b.partner, b.user)
	require.NoError(t, err)
	require.True(t, lots[0].Pending)
	require.True(t, lots[0].AvailableAt.IsZero(), "a held lot has no date")
	require.NoError(t, ledger.CheckInvariants(ctx, b.tx))

	h, err := b.ledger.ConfirmTx(ctx, b.tx, b.partner, "order-1", nil)
	require.NoError(t, err)
	require.Equal(t, int64(45), h.Balance)
	require.NoError(t, ledger.CheckInvariants(ctx, b.tx))
}

// TestConfirmCancel: each transition of a pending earn, with its entries,
// balances, events and refusals; the invariants after each.
func TestConfirmCancel(t *testing.T) {
	t.Parallel()
	type step struct {
		op      string // confirm or cancel
		ref     string
		code    apperr.Code // "" for success
		already bool
	}
	tests := []struct {
		name   string
		held   bool // else pending until in an hour
		steps  []step
		avail  int64 // balance at the end
		pend   int64 // pending points at the end
		events map[string]int
	}{
		{name: "confirm held", held: true, steps: []step{{op: "confirm", ref: "r"}},
			avail: 100, events: map[string]int{event.PointsActivated: 1}},
		{name: "confirm dated early", steps: []step{{op: "confirm", ref: "r"}},
			avail: 100, events: map[string]int{event.PointsActivated: 1}},
		{name: "confirm twice", held: true, steps: []step{{op: "confirm", ref: "r"}, {op: "confirm", ref: "r", already: true}},
			avail: 100, events: map[string]int{event.PointsActivated: 1}},
		{name: "cancel held", held: true, steps: []step{{op: "cancel", ref: "r"}},
			events: map[string]int{event.PointsCancelled: 1}},
		{name: "cancel dated", steps: []step{{op: "cancel", ref: "r"}},
			events: map[string]int{event.PointsCancelled: 1}},
		{name: "cancel twice", held: true, steps: []step{{op: "cancel", ref: "r"}, {op: "cancel", ref: "r", already: true}},
			events: map[string]int{event.PointsCancelled: 1}},
		{name: "confirm after cancel", held: true, steps: []step{{op: "cancel", ref: "r"}, {op: "confirm", ref: "r", code: apperr.CodeEarnCancelled}},
			events: map[string]int{event.PointsCancelled: 1, event.PointsActivated: 0}},
		{name: "cancel after confirm", held: true, steps: []step{{op: "confirm", ref: "r"}, {op: "cancel", ref: "r", code: apperr.CodeEarnNotPending}},
			avail: 100, events: map[string]int{event.PointsActivated: 1, event.PointsCancelled: 0}},
		{name: "never pending", held: true, steps: []step{{op: "confirm", ref: "now", code: apperr.CodeEarnNotPending}, {op: "cancel", ref: "now", code: apperr.CodeEarnNotPending}},
			pend: 100, events: map[string]int{event.PointsActivated: 0}},
		{name: "unknown reference", held: true, steps: []step{{op: "confirm", ref: "nope", code: apperr.CodeEarnNotFound}, {op: "cancel", ref: "nope", code: apperr.CodeEarnNotFound}},
			pend: 100},
		{name: "a burn's reference", held: true, steps: []step{{op: "confirm", ref: "burn", code: apperr.CodeEarnNotFound}},
			pend: 100},
		{name: "another partner's reference", held: true, steps: []step{{op: "confirm", ref: "theirs", code: apperr.CodeEarnNotFound}, {op: "cancel", ref: "theirs", code: apperr.CodeEarnNotFound}},
			pend: 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			b := setupTx(t)
			// The user has 10 available points (an earn with reference
			// "now", spent down by a burn with reference "burn") besides
			// the 100 pending ones.
			b.apply(t, ledger.Change{Kind: ledger.KindEarn, Points: 20, Reason: "now", Reference: "now"})
			b.apply(t, ledger.Change{Kind: ledger.KindBurn, Points: 10, Reason: "burn", Reference: "burn"})
			c := ledger.Change{Kind: ledger.KindEarn, Points: 100, Reason: "order", Reference: "r", Held: tt.held}
			if !tt.held {
				c.AvailableAt = b.now.Add(time.Hour)
			}
			earn := b.apply(t, c)
			// Another partner's earn with reference "theirs".
			keys, err := keyring.New(make([]byte, keyring.KeySize))
			require.NoError(t, err)
			other, err := partner.NewService(keys).Upsert(ctx, b.tx, partner.CreateParams{Slug: "other-" + uuid.NewString()[:8], Name: "Other"})
			require.NoError(t, err)
			ou, err := user.NewService(keys, event.NewRecorder()).UpsertTx(ctx, b.tx, other.ID, "u1", user.Profile{})
			require.NoError(t, err)
			_, err = b.ledger.ApplyTx(ctx, b.tx, other.ID, ledger.Change{UserID: ou.User.ID, Kind: ledger.KindEarn, Points: 7, Reason: "x", Reference: "theirs", Held: true})
			require.NoError(t, err)

			var first *ledger.HoldResult
			for i, s := range tt.steps {
				b.now = b.now.Add(time.Minute)
				var h *ledger.HoldResult
				var err error
				if s.op == "confirm" {
					h, err = b.ledger.ConfirmTx(ctx, b.tx, b.partner, s.ref, nil)
				} else {
					h, err = b.ledger.CancelTx(ctx, b.tx, b.partner, s.ref, "")
				}
				if s.code != "" {
					require.Equal(t, s.code, apperr.CodeOf(err), "step %d: %v", i, err)
					continue
				}
				require.NoError(t, err, "step %d", i)
				require.Equal(t, s.already, h.Already)
				require.Equal(t, earn.ID, h.Earn.ID)
				if s.already {
					require.Equal(t, first.Entry.ID, h.Entry.ID, "the earlier entry")
				} else {
					first = h
					want := ledger.KindActivate
					if s.op == "cancel" {
						want = ledger.KindCancel
					}
					require.Equal(t, want, h.Entry.Kind)
					stored, err := b.ledger.Entry(ctx, b.tx, b.partner, b.user, h.Entry.ID)
					require.NoError(t, err)
					require.Equal(t, want, stored.Kind)
				}
				require.NoError(t, ledger.CheckInvariants(ctx, b.tx), "step %d", i)
			}
			bal, err := b.ledger.BalanceOf(ctx, b.tx, b.partner, b.user)
			require.NoError(t, err)
			require.Equal(t, 10+tt.avail, bal.Points)
			require.Equal(t, tt.pend, bal.PendingPoints)
			require.Equal(t, 20+tt.avail, bal.LifetimeEarned, "lifetime counts confirmed points only")
			for typ, n := range tt.events {
				got := events(t, b.tx, typ)
				require.Len(t, got, n, typ)
				for _, d := range got {
					require.Equal(t, "r", d["reference"])
					require.EqualValues(t, 100, d["points"])
					require.EqualValues(t, earn.ID, d["earnEntryId"])
					require.Equal(t, b.user.String(), d["userId"])
				}
			}
			// The job has nothing left to do with a settled earn.
			b.now = b.now.AddDate(1, 0, 0)
			n, err := ledger.ActivateDueTx(ctx, b.tx, nil, b.now, 10)
			require.NoError(t, err)
			require.Zero(t, n, "held lots are never due")
			require.NoError(t, ledger.CheckInvariants(ctx, b.tx))
		})
	}
}

// TestConfirmRacesCancel: confirm and cancel of one held earn at once, in
// separate transactions: exactly one wins, the other gets its 409 code,
// and the invariants hold.
func TestConfirmRacesCancel(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	u := b.user(t, "racer")
	const rounds = 20
	wins := map[string]int{}
	for i := range rounds {
		ref := "race-" + uuid.NewString()
		_, err := b.apply(ctx, ledger.Change{UserID: u, Kind: ledger.KindEarn, Points: 10, Reason: "held", Reference: ref, Held: true})
		require.NoError(t, err)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for j := range 2 {
			wg.Go(func() {
				errs[j] = b.db.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
					var err error
					if (i+j)%2 == 0 {
						_, err = b.ledger.ConfirmTx(ctx, tx, b.partner.ID, ref, nil)
					} else {
						_, err = b.ledger.CancelTx(ctx, tx, b.partner.ID, ref, "")
					}
					return err
				})
			})
		}
		wg.Wait()
		var ok, lost int
		for j, err := range errs {
			op := map[bool]string{true: "confirm", false: "cancel"}[(i+j)%2 == 0]
			switch {
			case err == nil:
				ok++
				wins[op]++
			case op == "confirm" && apperr.Is(err, apperr.CodeEarnCancelled),
				op == "cancel" && apperr.Is(err, apperr.CodeEarnNotPending):
				lost++
			default:
				t.Fatalf("round %d %s: %v", i, op, err)
			}
		}
		require.Equal(t, 1, ok, "round %d: exactly one outcome", i)
		require.Equal(t, 1, lost)
	}
	require.NoError(t, ledger.CheckInvariants(ctx, b.db.Bun))
	bal := b.balance(t, u)
	require.Equal(t, int64(10*wins["confirm"]), bal.Points)
	require.Zero(t, bal.PendingPoints)
	var settled int
	require.NoError(t, b.db.Bun.NewRaw("SELECT count(*) FROM ledger_entries WHERE kind IN ('activate', 'cancel')").Scan(ctx, &settled))
	require.Equal(t, rounds, settled)
	t.Logf("confirm won %d, cancel won %d of %d rounds", wins["confirm"], wins["cancel"], rounds)
}

// TestActivateDueEmitsOncePerLot: the lots job's activation writes one
// points.activated per lot, in its transaction, and none on a second run.
func TestActivateDueEmitsOncePerLot(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupTx(t)
	keys, err := keyring.New(make([]byte, keyring.KeySize))
	require.NoError(t, err)
	res, err := user.NewService(keys, event.NewRecorder()).UpsertTx(ctx, b.tx, b.partner, "u2", user.Profile{})
	require.NoError(t, err)
	u2 := res.User.ID
	var lots []*ledger.Entry
	for i, u := range []uuid.UUID{b.user, u2, b.user, u2, b.user} {
		e, err := b.ledger.ApplyTx(ctx, b.tx, b.partner, ledger.Change{UserID: u, Kind: ledger.KindEarn, Points: int64(10 + i), Reason: "p",
			Reference: "ref-" + string(rune('a'+i)), AvailableAt: b.now.Add(time.Duration(i+1) * time.Hour)})
		require.NoError(t, err)
		lots = append(lots, e)
	}
	require.Len(t, events(t, b.tx, event.PointsPending), 5)
	n, err := ledger.ActivateDueTx(ctx, b.tx, nil, b.now.Add(3*time.Hour), 2)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	n, err = ledger.ActivateDueTx(ctx, b.tx, nil, b.now.Add(10*time.Hour), 10)
	require.NoError(t, err)
	require.Equal(t, 3, n)
	n, err = ledger.ActivateDueTx(ctx, b.tx, nil, b.now.Add(10*time.Hour), 10)
	require.NoError(t, err)
	require.Zero(t, n)

	got := events(t, b.tx, event.PointsActivated)
	require.Len(t, got, 5, "one per lot")
	seen := map[float64]bool{}
	for _, d := range got {
		id := d["earnEntryId"].(float64)
		require.False(t, seen[id], "lot of earn %v activated twice", id)
		seen[id] = true
		require.Equal(t, false, d["confirmed"])
		var e *ledger.Entry
		for _, l := range lots {
			if float64(l.ID) == id {
				e = l
			}
		}
		require.NotNil(t, e)
		require.Equal(t, *e.Reference, d["reference"])
		require.EqualValues(t, e.Points, d["points"])
		require.Equal(t, e.UserID.String(), d["userId"])
		act, err := b.ledger.Entry(ctx, b.tx, b.partner, e.UserID, int64(d["entryId"].(float64)))
		require.NoError(t, err)
		require.Equal(t, ledger.KindActivate, act.Kind)
		require.EqualValues(t, act.BalanceAfter, d["balance"])
	}
	require.NoError(t, ledger.CheckInvariants(ctx, b.tx))
}
