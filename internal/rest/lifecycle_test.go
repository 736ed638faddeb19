package rest_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/ledger"
	"github.com/perkshq/perks/internal/user"
)

// lifecycleBundle is an app with users whose lots are in every state.
type lifecycleBundle struct {
	env *apptest.Env
	// exp1 and exp2 are the two expiry instants of user "two-dates".
	exp1, exp2 time.Time
}

func setupLifecycle(t *testing.T) *lifecycleBundle {
	t.Helper()
	env := apptest.New(t)
	ctx := context.Background()
	a, p := env.App, env.Acme.Partner
	now := env.Now().UTC()
	b := &lifecycleBundle{env: env, exp1: now.Add(10 * 24 * time.Hour).Truncate(time.Second), exp2: now.Add(40 * 24 * time.Hour).Truncate(time.Second)}
	soon := now.Add(time.Hour)
	users := map[string][]ledger.Change{
		"pending":   {{Kind: ledger.KindEarn, Points: 70, AvailableAt: now.Add(14 * 24 * time.Hour)}, {Kind: ledger.KindEarn, Points: 5}},
		"two-dates": {{Kind: ledger.KindEarn, Points: 100, ExpiresAt: &b.exp1}, {Kind: ledger.KindEarn, Points: 20, ExpiresAt: &b.exp1}, {Kind: ledger.KindEarn, Points: 50, ExpiresAt: &b.exp2}, {Kind: ledger.KindEarn, Points: 9}},
		"never":     {{Kind: ledger.KindEarn, Points: 30}},
		"drained":   {{Kind: ledger.KindEarn, Points: 40, ExpiresAt: &b.exp1}, {Kind: ledger.KindBurn, Points: 40}},
		"kinds": {
			{Kind: ledger.KindEarn, Points: 100, Reference: "order-1", ActionCode: "purchase"},
			{Kind: ledger.KindEarn, Points: 8, ExpiresAt: &soon},
			{Kind: ledger.KindEarn, Points: 6, AvailableAt: now.Add(30 * time.Minute)},
			{Kind: ledger.KindEarn, Points: 4, AvailableAt: now.Add(90 * time.Minute), Reference: "order-2"},
		},
	}
	require.NoError(t, a.DB.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		for ext, changes := range users {
			u, err := a.Users.UpsertTx(ctx, tx, p.ID, ext, user.Profile{})
			require.NoError(t, err)
			for _, c := range changes {
				c.UserID, c.Reason = u.User.ID, "test"
				_, err := a.Ledger.ApplyTx(ctx, tx, p.ID, c)
				require.NoError(t, err)
			}
		}
		return nil
	}))
	// User "kinds": the 6 activate, the 8 expire, then H1's cancel of the
	// held 4 and H2's reverse of order-1 (written here as their entries
	// would be: source = the earn they undo).
	env.Clock.Advance(2 * time.Hour)
	require.NoError(t, a.DB.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		_, err := ledger.ActivateDueTx(ctx, tx, nil, now.Add(time.Hour), 10)
		require.NoError(t, err)
		_, err = ledger.ExpireDueTx(ctx, tx, nil, now.Add(2*time.Hour), 10)
		require.NoError(t, err)
		_, err = tx.ExecContext(ctx, `INSERT INTO ledger_entries (partner_id, user_id, kind, points, balance_after, reason, source_type, source_id, reference, occurred_at, created_at)
			SELECT e.partner_id, e.user_id, k.kind, k.points, 0, k.kind || ' test', 'earn', e.id::text, NULL, now(), now()
			FROM ledger_entries e JOIN (VALUES ('order-1', 'reverse', -30), ('order-2', 'cancel', -4)) AS k(ref, kind, points) ON e.reference = k.ref
			WHERE e.partner_id = ? ORDER BY k.kind DESC`, p.ID)
		return err
	}))
	return b
}

type expiring struct {
	Points    int64     `json:"points"`
	ExpiresAt time.Time `json:"expiresAt"`
}

type lifecycle struct {
	Balance        int64      `json:"balance"`
	PendingPoints  int64      `json:"pendingPoints"`
	LifetimePoints int64      `json:"lifetimePoints"`
	ExpiringPoints []expiring `json:"expiringPoints"`
}

func (b *lifecycleBundle) want() map[string]lifecycle {
	return map[string]lifecycle{
		"pending":   {Balance: 5, PendingPoints: 70, LifetimePoints: 5, ExpiringPoints: []expiring{}},
		"two-dates": {Balance: 179, LifetimePoints: 179, ExpiringPoints: []expiring{{120, b.exp1}, {50, b.exp2}}},
		"never":     {Balance: 30, LifetimePoints: 30, ExpiringPoints: []expiring{}},
		"drained":   {Balance: 0, LifetimePoints: 40, ExpiringPoints: []expiring{}},
		// 100 + 8 expired + 6 activated; the SQL-written reverse and cancel
		// leave the balance row alone (H1/H2 own that).
		"kinds": {Balance: 106, PendingPoints: 4, LifetimePoints: 114, ExpiringPoints: []expiring{}},
	}
}

func normalise(l lifecycle) lifecycle {
	for i := range l.ExpiringPoints {
		l.ExpiringPoints[i].ExpiresAt = l.ExpiringPoints[i].ExpiresAt.UTC()
	}
	return l
}

// TestUserPointsLifecycle: user/info, the user list and the export (NDJSON
// and CSV) show the same balance, pending points, next expiry days and
// lifetime points for lots in every state, and every entry kind.
func TestUserPointsLifecycle(t *testing.T) {
	t.Parallel()
	b := setupLifecycle(t)
	env := b.env
	want := b.want()

	t.Run("user info", func(t *testing.T) {
		for ext, w := range want {
			res := env.Partner("acme", http.MethodGet, "/integrations/users/"+ext, nil)
			require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
			var got lifecycle
			require.NoError(t, json.Unmarshal(res.Body, &got))
			require.Equal(t, w, normalise(got), ext)
		}
	})

	t.Run("user list", func(t *testing.T) {
		res := env.Partner("acme", http.MethodGet, "/integrations/users?limit=1000", nil)
		require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
		var page struct {
			Items []struct {
				lifecycle
				ExternalUserID string `json:"externalUserId"`
			} `json:"items"`
		}
		require.NoError(t, json.Unmarshal(res.Body, &page))
		seen := 0
		for _, it := range page.Items {
			if w, ok := want[it.ExternalUserID]; ok {
				require.Equal(t, w, normalise(it.lifecycle), it.ExternalUserID)
				seen++
			}
		}
		require.Equal(t, len(want), seen)
	})

	t.Run("entry kinds", func(t *testing.T) {
		res := env.Partner("acme", http.MethodGet, "/integrations/users/kinds", nil)
		var got struct {
			RecentEntries []struct {
				Kind       string  `json:"kind"`
				Points     int64   `json:"points"`
				SourceType *string `json:"sourceType"`
				SourceID   *string `json:"sourceId"`
				Reference  *string `json:"reference"`
			} `json:"recentEntries"`
		}
		require.NoError(t, json.Unmarshal(res.Body, &got))
		kinds := map[string]int64{}
		for _, e := range got.RecentEntries {
			kinds[e.Kind] += e.Points
			if e.Kind == "reverse" || e.Kind == "expire" || e.Kind == "activate" || e.Kind == "cancel" {
				require.NotNil(t, e.SourceType, e.Kind)
				require.NotNil(t, e.SourceID, e.Kind)
			}
		}
		require.Equal(t, map[string]int64{"earn": 108, "pending": 10, "activate": 6, "expire": -8, "reverse": -30, "cancel": -4}, kinds)
	})

	env.WaitExportable()
	t.Run("export json", func(t *testing.T) {
		res := env.Partner("acme", http.MethodGet, "/integrations/exports/users", nil)
		require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
		ids := userIDs(t, env)
		sc := bufio.NewScanner(bytes.NewReader(res.Body))
		seen := 0
		for sc.Scan() {
			var l struct {
				lifecycle
				UserID  string `json:"userId"`
				Actions []struct {
					Kind string `json:"kind"`
				} `json:"actions"`
			}
			require.NoError(t, json.Unmarshal(sc.Bytes(), &l))
			ext, ok := ids[l.UserID]
			if !ok {
				continue
			}
			if ext == "kinds" {
				var kinds []string
				for _, a := range l.Actions {
					kinds = append(kinds, a.Kind)
				}
				require.ElementsMatch(t, []string{"earn", "earn", "pending", "pending", "activate", "expire", "reverse", "cancel"}, kinds)
				// The export's balance is the last entry's balance_after.
				l.Balance = want[ext].Balance
			}
			require.Equal(t, want[ext], normalise(l.lifecycle), ext)
			seen++
		}
		require.Equal(t, len(want), seen)
	})

	t.Run("export csv", func(t *testing.T) {
		res := env.Partner("acme", http.MethodGet, "/integrations/exports/users?format=csv", nil)
		require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
		r := csv.NewReader(bytes.NewReader(res.Body))
		r.FieldsPerRecord = -1
		recs, err := r.ReadAll()
		require.NoError(t, err)
		col := map[string]int{}
		for i, h := range recs[0] {
			col[h] = i
		}
		require.Equal(t, "gifts", recs[0][15], "older columns keep their positions")
		require.Equal(t, []string{"pendingPoints", "lifetimePoints", "expiringPoints", "tier", "referralCode", "referredBy", "referrals", "erasedAt"}, recs[0][16:], "erasedAt stays last")
		ids := userIDs(t, env)
		seen := 0
		for _, rec := range recs[1:] {
			ext, ok := ids[rec[0]]
			if !ok {
				continue
			}
			var l lifecycle
			l.PendingPoints, err = strconv.ParseInt(rec[col["pendingPoints"]], 10, 64)
			require.NoError(t, err)
			l.LifetimePoints, err = strconv.ParseInt(rec[col["lifetimePoints"]], 10, 64)
			require.NoError(t, err)
			require.NoError(t, json.Unmarshal([]byte(rec[col["expiringPoints"]]), &l.ExpiringPoints))
			l.Balance = want[ext].Balance
			require.Equal(t, want[ext], normalise(l), ext)
			seen++
		}
		require.Equal(t, len(want), seen)
	})

	t.Run("another partner's user", func(t *testing.T) {
		res := env.Partner("globex", http.MethodGet, "/integrations/users/two-dates", nil)
		require.Equal(t, http.StatusNotFound, res.StatusCode)
		require.Equal(t, "USER_NOT_FOUND", res.Code())
		res = env.Partner("globex", http.MethodGet, "/integrations/users?limit=1000", nil)
		require.NotContains(t, string(res.Body), "two-dates")
	})
}

func userIDs(t *testing.T, env *apptest.Env) map[string]string {
	t.Helper()
	var rows []struct {
		ID  string `bun:"id"`
		Ext string `bun:"external_id"`
	}
	require.NoError(t, env.DB.Bun.NewRaw("SELECT id::text, external_id FROM users WHERE partner_id = ?", env.Acme.Partner.ID).Scan(t.Context(), &rows))
	out := map[string]string{}
	for _, r := range rows {
		out[r.ID] = r.Ext
	}
	return out
}
