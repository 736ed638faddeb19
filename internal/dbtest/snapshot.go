package dbtest

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"
)

// volatile lists what a rejected request may legitimately touch: bookkeeping
// that is not business state.
var volatile = map[string][]string{
	"replay_cache":         nil, // every accepted signature is remembered
	"rate_limit_buckets":   nil, // every authenticated call counts, refused or not
	"partner_credentials":  {"last_used_at"},
	"merchant_credentials": {"last_used_at"},
	// The reports' rollup is derived from the ledger (which is compared)
	// and folded by a periodic job at any moment.
	"report_days":      nil,
	"report_deltas":    nil,
	"report_user_days": nil,
}

// Snapshot fingerprints every business table (River's and bun's own tables
// aside), so a test can assert that a rejected request changed nothing.
func Snapshot(t testing.TB, db bun.IDB) map[string]string {
	t.Helper()
	ctx := context.Background()
	var tables []string
	err := db.NewRaw(`SELECT table_name FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'
		AND table_name NOT LIKE 'river%' AND table_name NOT LIKE 'bun_%' ORDER BY 1`).Scan(ctx, &tables)
	require.NoError(t, err)
	out := map[string]string{}
	for _, table := range tables {
		skip, isVolatile := volatile[table]
		if isVolatile && skip == nil {
			continue
		}
		var cols []string
		err := db.NewRaw(`SELECT column_name FROM information_schema.columns
			WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position`, table).Scan(ctx, &cols)
		require.NoError(t, err)
		var keep []string
		for _, c := range cols {
			if !contains(skip, c) {
				keep = append(keep, fmt.Sprintf("%q", c))
			}
		}
		var sum string
		q := fmt.Sprintf(`SELECT count(*) || ':' || coalesce(md5(string_agg(r::text, '|' ORDER BY r::text)), '')
			FROM (SELECT %s FROM %q) r`, strings.Join(keep, ", "), table)
		require.NoError(t, db.NewRaw(q).Scan(ctx, &sum), table)
		out[table] = sum
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
