package bulk_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/ledger"
)

// TestMultistorePendingItems: multistore items take pendingUntil and
// pending: true, answered at once or stored as a job (the job keeps them).
func TestMultistorePendingItems(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	provisionMany(t, env, "h", 2)
	until := env.Clock.Now().Add(72 * time.Hour).UTC().Format(time.RFC3339)
	items := func(prefix string) []byte {
		b, err := json.Marshal(map[string]any{"items": []map[string]any{
			{"externalUserId": "h0", "action": "purchase", "points": 10, "reference": prefix + "-held", "pending": true},
			{"externalUserId": "h1", "action": "purchase", "points": 20, "reference": prefix + "-dated", "pendingUntil": until},
			{"externalUserId": "h1", "action": "purchase", "points": 30, "pending": true},
			{"externalUserId": "h1", "action": "purchase", "points": 40, "reference": prefix + "-both", "pending": true, "pendingUntil": until},
			{"externalUserId": "h1", "action": "purchase", "points": 50, "reference": prefix + "-bad", "pendingUntil": "soon"},
		}})
		require.NoError(t, err)
		return b
	}
	codes := func(results []map[string]any) []string {
		var out []string
		for _, r := range results {
			c, _ := r["code"].(string)
			out = append(out, r["status"].(string)+":"+c)
		}
		return out
	}
	want := []string{"ok:", "ok:", "error:MISSING_FIELD", "error:INVALID_FIELD", "error:INVALID_FIELD"}

	res := env.Partner("acme", http.MethodPost, "/integrations/actions/multistore", items("sync"))
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.Body)
	var sync struct{ Results []map[string]any }
	require.NoError(t, json.Unmarshal(res.Body, &sync))
	require.Equal(t, want, codes(sync.Results))

	res = env.Partner("acme", http.MethodPost, "/integrations/actions/multistore?async=true", items("job"))
	require.Equal(t, http.StatusAccepted, res.StatusCode, "%s", res.Body)
	id := res.JSON(t)["jobId"].(string)
	runJob(t, env, id)
	require.Equal(t, want, codes(allResults(t, env, id)))

	var lots []struct {
		Ref   string     `bun:"reference"`
		Avail *time.Time `bun:"available_at"`
	}
	require.NoError(t, env.DB.Bun.NewRaw(`SELECT e.reference, l.available_at FROM point_lots l
		JOIN ledger_entries e ON e.partner_id = l.partner_id AND e.id = l.source_entry_id
		WHERE l.pending ORDER BY e.reference`).Scan(context.Background(), &lots))
	require.Len(t, lots, 4)
	for _, l := range lots {
		switch l.Ref {
		case "job-held", "sync-held":
			require.Nil(t, l.Avail, l.Ref)
		case "job-dated", "sync-dated":
			require.NotNil(t, l.Avail, l.Ref)
			require.Equal(t, until, l.Avail.UTC().Format(time.RFC3339), l.Ref)
		default:
			t.Fatalf("unexpected pending lot %s", l.Ref)
		}
	}
	require.NoError(t, ledger.CheckInvariants(context.Background(), env.DB.Bun))
}
