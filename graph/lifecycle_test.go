package graph_test

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/ledger"
	"github.com/perkshq/perks/internal/user"
)

type lifecycleBundle struct {
	env        *apptest.Env
	exp1, exp2 time.Time
	// entry ids of user "kinds" by what they are.
	ids map[string]int64
}

// setupLifecycle makes acme users whose lots are in every state, and user
// "kinds" with an entry of every kind. Reverse and cancel entries are
// written as the reversal writes them: source "earn" naming the earn.
func setupLifecycle(t *testing.T) *lifecycleBundle {
	t.Helper()
	env := apptest.New(t)
	ctx := context.Background()
	a, p := env.App, env.Acme.Partner
	now := env.Now().UTC()
	b := &lifecycleBundle{env: env, exp1: now.Add(10 * 24 * time.Hour).Truncate(time.Second), exp2: now.Add(40 * 24 * time.Hour).Truncate(time.Second), ids: map[string]int64{}}
	soon := now.Add(time.Hour)
	type change struct {
		name string
		c    ledger.Change
	}
	users := map[string][]change{
		"pending":   {{"", ledger.Change{Kind: ledger.KindEarn, Points: 70, AvailableAt: now.Add(14 * 24 * time.Hour)}}, {"", ledger.Change{Kind: ledger.KindEarn, Points: 5}}},
		"two-dates": {{"", ledger.Change{Kind: ledger.KindEarn, Points: 100, ExpiresAt: &b.exp1}}, {"", ledger.Change{Kind: ledger.KindEarn, Points: 20, ExpiresAt: &b.exp1}}, {"", ledger.Change{Kind: ledger.KindEarn, Points: 50, ExpiresAt: &b.exp2}}, {"", ledger.Change{Kind: ledger.KindEarn, Points: 9}}},
		"never":     {{"never-earn", ledger.Change{Kind: ledger.KindEarn, Points: 30}}},
		"drained":   {{"", ledger.Change{Kind: ledger.KindEarn, Points: 40, ExpiresAt: &b.exp1}}, {"", ledger.Change{Kind: ledger.KindBurn, Points: 40}}},
		"kinds": {
			{"order-1", ledger.Change{Kind: ledger.KindEarn, Points: 100, Reference: "order-1", ActionCode: "purchase"}},
			{"expiring", ledger.Change{Kind: ledger.KindEarn, Points: 8, ExpiresAt: &soon}},
			{"held", ledger.Change{Kind: ledger.KindEarn, Points: 6, AvailableAt: now.Add(30 * time.Minute)}},
			{"order-2", ledger.Change{Kind: ledger.KindEarn, Points: 4, AvailableAt: now.Add(90 * time.Minute), Reference: "order-2"}},
		},
	}
	require.NoError(t, a.DB.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		for ext, changes := range users {
			u, err := a.Users.UpsertTx(ctx, tx, p.ID, ext, user.Profile{})
			require.NoError(t, err)
			for _, c := range changes {
				c.c.UserID, c.c.Reason = u.User.ID, "test "+c.name
				e, err := a.Ledger.ApplyTx(ctx, tx, p.ID, c.c)
				require.NoError(t, err)
				if c.name != "" {
					b.ids[c.name] = e.ID
				}
			}
		}
		return nil
	}))
	env.Clock.Advance(2 * time.Hour)
	require.NoError(t, a.DB.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		_, err := ledger.ActivateDueTx(ctx, tx, nil, now.Add(time.Hour), 10)
		require.NoError(t, err)
		_, err = ledger.ExpireDueTx(ctx, tx, nil, now.Add(2*time.Hour), 10)
		require.NoError(t, err)
		// kinds: a reverse of order-1 and a cancel of order-2; never: a
		// reverse naming kinds' earn (another user's: must show no origin).
		_, err = tx.ExecContext(ctx, `INSERT INTO ledger_entries (partner_id, user_id, kind, points, balance_after, reason, source_type, source_id, occurred_at, created_at)
			SELECT e.partner_id, coalesce(u.id, e.user_id), k.kind, k.points, 0, k.kind || ' test', 'earn', e.id::text, now(), now()
			FROM ledger_entries e
			JOIN (VALUES (?::bigint, 'reverse', -30, NULL), (?, 'cancel', -4, NULL), (?, 'reverse', -1, 'never')) AS k(id, kind, points, other) ON e.id = k.id
			LEFT JOIN users u ON u.partner_id = e.partner_id AND u.external_id = k.other
			WHERE e.partner_id = ? ORDER BY k.points`, b.ids["order-1"], b.ids["order-2"], b.ids["order-1"], p.ID)
		return err
	}))
	return b
}

type expiring struct {
	Points    int64     `json:"points"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// TestMeLifecycle: me shows balance, pending points, the next expiry days
// and lifetime points for lots in every state.
func TestMeLifecycle(t *testing.T) {
	t.Parallel()
	b := setupLifecycle(t)
	type me struct {
		Balance        int64      `json:"balance"`
		PendingPoints  int64      `json:"pendingPoints"`
		LifetimePoints int64      `json:"lifetimePoints"`
		ExpiringPoints []expiring `json:"expiringPoints"`
	}
	for _, tt := range []struct {
		ext  string
		want me
	}{
		{"pending", me{Balance: 5, PendingPoints: 70, LifetimePoints: 5, ExpiringPoints: []expiring{}}},
		{"two-dates", me{Balance: 179, LifetimePoints: 179, ExpiringPoints: []expiring{{120, b.exp1}, {50, b.exp2}}}},
		{"never", me{Balance: 30, LifetimePoints: 30, ExpiringPoints: []expiring{}}},
		{"drained", me{Balance: 0, LifetimePoints: 40, ExpiringPoints: []expiring{}}},
		{"kinds", me{Balance: 106, PendingPoints: 4, LifetimePoints: 114, ExpiringPoints: []expiring{}}},
	} {
		t.Run(tt.ext, func(t *testing.T) {
			res := b.env.GraphQL(b.env.Token("acme", tt.ext, nil), `{ me { balance pendingPoints lifetimePoints expiringPoints { points expiresAt } } }`, nil)
			require.Empty(t, res.Errors)
			var got struct{ Me me }
			require.NoError(t, json.Unmarshal(res.Data, &got))
			for i := range got.Me.ExpiringPoints {
				got.Me.ExpiringPoints[i].ExpiresAt = got.Me.ExpiringPoints[i].ExpiresAt.UTC()
			}
			require.Equal(t, tt.want, got.Me)
		})
	}
}

// TestHistoryKindsAndWhy: history shows every kind as an enum with why it
// happened: the earn a reverse or cancel undid, the lot that expired or
// activated and its earn, the lot (and expiry) a credit created. Another
// user's entry is never shown as an origin.
func TestHistoryKindsAndWhy(t *testing.T) {
	t.Parallel()
	b := setupLifecycle(t)
	const q = `{ history(first: 50) { edges { node { id kind entryKind points reason action reference
		origin { id entryKind reference } lot { id points remaining pending availableAt expiresAt } } } } }`
	type node struct {
		ID        string  `json:"id"`
		Kind      string  `json:"kind"`
		EntryKind string  `json:"entryKind"`
		Points    int64   `json:"points"`
		Action    *string `json:"action"`
		Reference *string `json:"reference"`
		Origin    *struct {
			ID        string  `json:"id"`
			EntryKind string  `json:"entryKind"`
			Reference *string `json:"reference"`
		} `json:"origin"`
		Lot *struct {
			ID        string     `json:"id"`
			Points    int64      `json:"points"`
			Remaining int64      `json:"remaining"`
			Pending   bool       `json:"pending"`
			ExpiresAt *time.Time `json:"expiresAt"`
		} `json:"lot"`
	}
	history := func(t *testing.T, ext string) []node {
		res := b.env.GraphQL(b.env.Token("acme", ext, nil), q, nil)
		require.Empty(t, res.Errors)
		var got struct {
			History struct{ Edges []struct{ Node node } }
		}
		require.NoError(t, json.Unmarshal(res.Data, &got))
		var out []node
		for _, e := range got.History.Edges {
			require.Equal(t, e.Node.Kind, map[string]string{"EARN": "earn", "BURN": "burn", "REFUND": "refund", "EXPIRE": "expire", "ADJUST": "adjust",
				"PENDING": "pending", "ACTIVATE": "activate", "REVERSE": "reverse", "CANCEL": "cancel"}[e.Node.EntryKind])
			out = append(out, e.Node)
		}
		return out
	}
	id := func(name string) string { return strconv.FormatInt(b.ids[name], 10) }

	nodes := history(t, "kinds")
	byKind := map[string][]node{}
	for _, n := range nodes {
		byKind[n.EntryKind] = append(byKind[n.EntryKind], n)
	}
	require.Len(t, nodes, 8)

	rev := byKind["REVERSE"]
	require.Len(t, rev, 1)
	require.Equal(t, int64(-30), rev[0].Points)
	require.Equal(t, id("order-1"), rev[0].Origin.ID, "a reverse shows the earn it undid")
	require.Equal(t, "order-1", *rev[0].Origin.Reference)
	require.Nil(t, rev[0].Lot)

	cancel := byKind["CANCEL"]
	require.Len(t, cancel, 1)
	require.Equal(t, id("order-2"), cancel[0].Origin.ID)
	require.Equal(t, "PENDING", cancel[0].Origin.EntryKind)

	exp := byKind["EXPIRE"]
	require.Len(t, exp, 1)
	require.Equal(t, int64(-8), exp[0].Points)
	require.Equal(t, id("expiring"), exp[0].Origin.ID, "an expiry shows the earn whose points expired")
	require.Equal(t, int64(8), exp[0].Lot.Points)
	require.Zero(t, exp[0].Lot.Remaining)
	require.NotNil(t, exp[0].Lot.ExpiresAt)

	act := byKind["ACTIVATE"]
	require.Len(t, act, 1)
	require.Equal(t, id("held"), act[0].Origin.ID)
	require.False(t, act[0].Lot.Pending)

	pend := byKind["PENDING"]
	require.Len(t, pend, 2)
	for _, n := range pend {
		require.NotNil(t, n.Lot, "a held earn shows its lot")
		require.Nil(t, n.Origin)
	}
	for _, n := range byKind["EARN"] {
		require.NotNil(t, n.Lot)
		if n.ID == id("order-1") {
			require.Equal(t, "purchase", *n.Action)
			require.Equal(t, "order-1", *n.Reference)
			require.Nil(t, n.Lot.ExpiresAt)
		}
	}

	never := history(t, "never")
	require.Len(t, never, 2)
	require.Equal(t, "REVERSE", never[0].EntryKind)
	require.Nil(t, never[0].Origin, "another user's earn is not shown")
}
