package database_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/dbtest"
)

// notByPartner lists the tables whose primary key may not lead with
// partner_id, each with the reason. Every other table's key must lead with
// it: that is what lets the ledger and the events be partitioned by partner,
// and what Citus needs to distribute by partner (docs/scaling.md). A new
// table that fails here either gets partner_id first in its key or a line
// here that says why it belongs to no partner.
var notByPartner = map[string]string{
	"partners":               "the tenant itself",
	"accounts":               "people of three realms (partner, merchant, platform); a reference table",
	"account_sessions":       "keyed by the session token's hash, looked up before the realm is known",
	"account_activations":    "keyed by the link token's hash, looked up before the realm is known",
	"audit_log":              "spans realms, the platform's own actions included",
	"master_key_fingerprint": "one row for the installation",
	"bun_migrations":         "the schema's own bookkeeping",
	"bun_migration_locks":    "the schema's own bookkeeping",
	"river_job":              "River's tables: jobs carry their partner in their arguments",
	"river_leader":           "River's tables",
	"river_migration":        "River's tables",
	"river_notification":     "River's tables",
	"river_queue":            "River's tables",
	"river_client":           "River's tables",
	"river_client_queue":     "River's tables",
}

// noKey lists the tables that have no primary key at all, with the reason.
var noKey = map[string]string{
	"report_deltas":      "append-only staging folded into report_days; rows carry partner_id",
	"report_gift_deltas": "append-only staging folded into report_gift_days; rows carry partner_id",
}

// TestPrimaryKeysLeadWithPartner keeps every tenant table's primary key
// leading with partner_id.
func TestPrimaryKeysLeadWithPartner(t *testing.T) {
	t.Parallel()
	db := dbtest.Shared(t)
	ctx := context.Background()

	rows, err := db.Pool.Query(ctx, `
		SELECT c.relname,
		       (SELECT a.attname FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum = i.indkey[0]),
		       i.indexrelid IS NOT NULL
		  FROM pg_class c
		  JOIN pg_namespace n ON n.oid = c.relnamespace
		  LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
		 WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition
		 ORDER BY 1`)
	require.NoError(t, err)
	defer rows.Close()
	seen := 0
	for rows.Next() {
		var table string
		var first *string
		var hasKey bool
		require.NoError(t, rows.Scan(&table, &first, &hasKey))
		seen++
		if !hasKey {
			_, ok := noKey[table]
			require.True(t, ok, "table %s has no primary key: give it one that leads with partner_id, or say why in noKey", table)
			continue
		}
		if _, ok := notByPartner[table]; ok {
			continue
		}
		require.NotNil(t, first, table)
		require.Equal(t, "partner_id", *first,
			"the primary key of %s leads with %s: lead with partner_id (docs/scaling.md), or say why in notByPartner", table, *first)
	}
	require.NoError(t, rows.Err())
	require.Greater(t, seen, 30, "the schema has its tables")
}
