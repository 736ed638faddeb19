package export_test

import (
	"context"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/export"
)

type discard struct{ io.Writer }

func (discard) Begin(export.Page) error { return nil }

// TestWholeExportSortsOnLanes: only an export of the whole feed (from 0,
// no page bound) has its lanes scan and sort the tables; a page of it
// keeps the planner's index range scans, and an incremental export opens
// no lanes.
func TestWholeExportSortsOnLanes(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	ctx := context.Background()
	for _, ext := range []string{"l1", "l2", "l3"} {
		res := env.Partner("acme", "POST", "/integrations/users", []byte(`{"externalUserId":"`+ext+`"}`))
		require.Less(t, res.StatusCode, 300, "%s", res.Body)
	}
	env.WaitExportable()

	type seen struct {
		lanes    int
		settings string
	}
	var mu sync.Mutex
	var got []seen
	s := &export.Service{Pool: env.DB.Pool, Keys: env.App.Export.Keys}
	export.ObserveLanes(s, func(lanes int, settings string) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, seen{lanes, settings})
	})
	p := env.Acme.Partner.ID
	var first export.Page
	firstWriter := &pageRecorder{page: &first}
	_, err := s.Stream(ctx, export.Cursor{PartnerID: p}, 0, export.NDJSON, firstWriter)
	require.NoError(t, err)

	tests := []struct {
		name   string
		cur    export.Cursor
		limit  int
		sorted bool
		lanes  bool
	}{
		{"whole", export.Cursor{PartnerID: p}, 0, true, true},
		{"first page", export.Cursor{PartnerID: p}, 2, false, true},
		{"incremental", first.Next, 0, false, false},
	}
	for _, tt := range tests {
		got = nil
		_, err := s.Stream(ctx, tt.cur, tt.limit, export.NDJSON, discard{io.Discard})
		require.NoError(t, err, tt.name)
		if !tt.lanes {
			require.Empty(t, got, tt.name)
			continue
		}
		require.Len(t, got, 1, tt.name)
		require.Equal(t, 3, got[0].lanes, "%s: users, balances and entries", tt.name)
		require.Equal(t, tt.sorted, strings.Contains(got[0].settings, export.SortedLanes), "%s: %s", tt.name, got[0].settings)
	}
}

type pageRecorder struct{ page *export.Page }

func (w *pageRecorder) Begin(p export.Page) error   { *w.page = p; return nil }
func (w *pageRecorder) Write(b []byte) (int, error) { return len(b), nil }

// TestSortedLanesPlan: under SortedLanes the big streams read their table
// in physical order and sort it, even where the planner would follow the
// index: a bitmap heap scan (only the partner's pages) when sequential
// pages are dear, as for a small partner of a big shared table, else a
// sequential scan. Never an ordered index scan.
func TestSortedLanesPlan(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	ctx := context.Background()
	for name, q := range export.BigStreams() {
		plan := func(settings string) string {
			tx, err := env.DB.Pool.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
			require.NoError(t, err)
			defer tx.Rollback(ctx) //nolint:errcheck
			_, err = tx.Exec(ctx, settings)
			require.NoError(t, err)
			rows, err := tx.Query(ctx, "EXPLAIN "+strings.NewReplacer("$1", "'"+env.Acme.Partner.ID.String()+"'::uuid", "$2", "'0'", "$3", "'1000'",
				"$4", "'00000000-0000-0000-0000-000000000000'::uuid", "$5", "'ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid").Replace(q))
			require.NoError(t, err)
			lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
			require.NoError(t, err)
			return strings.Join(lines, "\n")
		}
		// An ordered index scan: "Index Scan" or "Index Only Scan" not
		// under a bitmap.
		ordered := func(plan string) bool {
			return strings.Count(plan, "Index Scan") > strings.Count(plan, "Bitmap Index Scan") || strings.Contains(plan, "Index Only Scan")
		}
		require.True(t, ordered(plan("SET LOCAL seq_page_cost = 1000")), "%s: the planner's choice", name)

		seq := plan("SET LOCAL enable_bitmapscan = off; " + export.SortedLanes)
		require.False(t, ordered(seq), "%s: %s", name, seq)
		require.Contains(t, seq, "Seq Scan", name)
		require.Contains(t, seq, "Sort", name)

		bitmap := plan("SET LOCAL seq_page_cost = 1000; " + export.SortedLanes)
		require.False(t, ordered(bitmap), "%s: %s", name, bitmap)
		require.Contains(t, bitmap, "Bitmap Heap Scan", name)
		require.Contains(t, bitmap, "Sort", name)
	}
}
