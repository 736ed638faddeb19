package scale_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/database"
	"github.com/perkshq/perks/internal/export"
	"github.com/perkshq/perks/internal/keyring"
)

// pageWriter keeps what an export page wrote.
type pageWriter struct {
	page export.Page
	bytes.Buffer
}

func (w *pageWriter) Begin(p export.Page) error { w.page = p; return nil }

// refs lists the references of the actions of an NDJSON page.
func (w *pageWriter) refs(t *testing.T) []string {
	t.Helper()
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(w.Bytes()))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var line struct {
			Actions []struct {
				Reference *string `json:"reference"`
			} `json:"actions"`
		}
		require.NoError(t, json.Unmarshal(sc.Bytes(), &line))
		for _, a := range line.Actions {
			if a.Reference != nil {
				out = append(out, *a.Reference)
			}
		}
	}
	return out
}

// TestExportOnALaggingStandby pauses the standby's replay and moves the
// cursor ahead of it on the primary: a page the standby cannot answer
// exactly is read on the primary, a standby without the primary to fall
// back on answers an empty page without moving the cursor back, and once
// it catches up every earn has been exported exactly once.
func TestExportOnALaggingStandby(t *testing.T) {
	enabled(t)
	in := install(t, true)
	one := startReplica(t, in.bin, in.dir, perksEnv(in.dir, in.primary.url), "primary-only")
	ctx := context.Background()
	c := acme(one.url)

	primary, err := database.Open(ctx, in.primary.url, 4)
	require.NoError(t, err)
	t.Cleanup(primary.Close)
	standby, err := database.Open(ctx, in.standby.url, 4)
	require.NoError(t, err)
	t.Cleanup(standby.Close)
	keys, _, err := keyring.LoadOrCreateDevKey(filepath.Join(in.dir, "secrets"))
	require.NoError(t, err)
	var acmeID uuid.UUID
	require.NoError(t, primary.Pool.QueryRow(ctx, "SELECT id FROM partners WHERE slug = 'acme'").Scan(&acmeID))

	onPrimary := &export.Service{Pool: primary.Pool, Keys: keys}
	onStandby := &export.Service{Pool: standby.Pool, Primary: primary.Pool, Keys: keys}
	standbyAlone := &export.Service{Pool: standby.Pool, Keys: keys}
	read := func(s *export.Service, cur export.Cursor, limit int) *pageWriter {
		t.Helper()
		w := &pageWriter{}
		_, err := s.Stream(ctx, cur, limit, export.NDJSON, w)
		require.NoError(t, err)
		return w
	}
	earn := func(user, ref string) {
		t.Helper()
		body := []byte(fmt.Sprintf(`{"externalUserId":%q,"action":"purchase","points":5,"reference":%q,"createUser":true}`, user, ref))
		code, _, b, err := c.send(c.request(ctx, http.MethodPost, "/integrations/actions", body, "lag-"+ref), body)
		require.NoError(t, err)
		require.Equal(t, http.StatusCreated, code, "%s", b)
	}
	caughtUp := func() {
		t.Helper()
		var lsn string
		require.NoError(t, primary.Pool.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&lsn))
		require.Eventually(t, func() bool {
			var ok bool
			return standby.Pool.QueryRow(ctx, "SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn", lsn).Scan(&ok) == nil && ok
		}, 30*time.Second, 20*time.Millisecond)
	}

	earn("lag-1", "lag-e1")
	caughtUp()
	first := read(onStandby, export.Cursor{PartnerID: acmeID}, 0)
	require.Contains(t, first.refs(t), "lag-e1")

	_, err = standby.Pool.Exec(ctx, "SELECT pg_wal_replay_pause()")
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = standby.Pool.Exec(context.Background(), "SELECT pg_wal_replay_resume()") })

	earn("lag-1", "lag-e2")
	ahead := read(onPrimary, first.page.Next, 0) // a cursor the standby has not reached
	require.Equal(t, []string{"lag-e2"}, ahead.refs(t))
	require.Greater(t, ahead.page.Next.From, first.page.Next.From)

	earn("lag-2", "lag-e3")
	earn("lag-3", "lag-e4")
	// The standby is behind the cursor: the page comes from the primary.
	behind := read(onStandby, ahead.page.Next, 1)
	require.True(t, behind.page.HasMore, "two users changed; one per page")
	got := behind.refs(t)
	// The next page of that range is pinned past the standby too.
	rest := read(onStandby, behind.page.Next, 1)
	got = append(got, rest.refs(t)...)
	require.ElementsMatch(t, []string{"lag-e3", "lag-e4"}, got)

	// Alone, the lagging standby answers nothing new and keeps the cursor.
	alone := read(standbyAlone, ahead.page.Next, 0)
	require.Empty(t, alone.refs(t))
	require.Equal(t, ahead.page.Next.From, alone.page.Next.From, "the cursor never moves back")

	// Caught up, the standby continues from the primary's cursors with
	// nothing twice and nothing missed.
	_, err = standby.Pool.Exec(ctx, "SELECT pg_wal_replay_resume()")
	require.NoError(t, err)
	earn("lag-1", "lag-e5")
	caughtUp()
	after := read(standbyAlone, rest.page.Next, 0)
	require.Equal(t, []string{"lag-e5"}, after.refs(t))
	fromAlone := read(standbyAlone, alone.page.Next, 0)
	require.ElementsMatch(t, []string{"lag-e3", "lag-e4", "lag-e5"}, fromAlone.refs(t))
}
