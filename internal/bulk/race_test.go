package bulk_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/ledger"
)

type multistoreOut struct {
	Total, OK, Failed int
	Results           []struct {
		Index     int
		Status    string
		EntryID   *int64
		Duplicate bool
		Code      *string
	}
}

// TestConcurrentMultistoresShareReferences is the storm that gave 5 x 500
// (a unique violation on the reference): six calls at once, each with the
// same referenced items (in a different order) and items of their own. Every
// call succeeds; each reference is earned once, by exactly one call, and the
// others report it as a duplicate of that entry; the items of their own
// are earned in every call; the ledger's invariants hold.
func TestConcurrentMultistoresShareReferences(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	const calls, shared, users = 6, 40, 8
	provisionMany(t, env, "r", users)

	bodies := make([][]byte, calls)
	for c := 0; c < calls; c++ {
		var items []string
		for k := 0; k < shared; k++ {
			i := (k + c*7) % shared // another order in each call
			items = append(items, fmt.Sprintf(`{"externalUserId":"r%d","action":"purchase","points":%d,"reference":"storm-%d"}`, i%users, i+1, i))
		}
		// Its own items: one with a reference, one without.
		items = append(items, fmt.Sprintf(`{"externalUserId":"r%d","action":"purchase","points":1000,"reference":"own-%d"}`, c%users, c))
		items = append(items, fmt.Sprintf(`{"externalUserId":"r%d","action":"purchase","points":1}`, c%users))
		bodies[c] = []byte(`{"items":[` + strings.Join(items, ",") + `]}`)
	}

	outs := make([]multistoreOut, calls)
	var wg sync.WaitGroup
	start := make(chan struct{})
	statuses := make([]int, calls)
	raw := make([][]byte, calls)
	for c := 0; c < calls; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			<-start
			res := env.Partner("acme", http.MethodPost, "/integrations/actions/multistore", bodies[c])
			statuses[c], raw[c] = res.StatusCode, res.Body
		}(c)
	}
	close(start)
	wg.Wait()

	earnedBy := map[int]int{} // shared reference -> calls that earned it
	entryOf := map[int]int64{}
	for c := 0; c < calls; c++ {
		require.Equal(t, http.StatusOK, statuses[c], "call %d: %s", c, raw[c])
		require.NoError(t, json.Unmarshal(raw[c], &outs[c]))
		require.Equal(t, shared+2, outs[c].OK, "call %d: %s", c, raw[c])
		for k, r := range outs[c].Results[:shared] {
			i := (k + c*7) % shared
			require.NotNil(t, r.EntryID)
			if !r.Duplicate {
				earnedBy[i]++
			}
			if prev, ok := entryOf[i]; ok {
				require.Equal(t, prev, *r.EntryID, "storm-%d answered with two entries", i)
			}
			entryOf[i] = *r.EntryID
		}
		require.False(t, outs[c].Results[shared].Duplicate)
		require.False(t, outs[c].Results[shared+1].Duplicate)
	}
	for i := 0; i < shared; i++ {
		require.Equal(t, 1, earnedBy[i], "storm-%d must be earned by exactly one call", i)
	}
	require.Equal(t, shared, env.Count("ledger_entries", "reference LIKE 'storm-%'"))
	require.Equal(t, calls, env.Count("ledger_entries", "reference LIKE 'own-%'"))
	require.Equal(t, calls, env.Count("ledger_entries", "reference IS NULL AND points = 1"))
	require.NoError(t, ledger.CheckInvariants(context.Background(), env.DB.Bun))
}
