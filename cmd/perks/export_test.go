package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/demo"
)

func lines(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m), sc.Text())
		out = append(out, m)
	}
	return out
}

// TestExportCommandResumes: the CLI pulls every page, saves the cursor,
// appends only new changes on the next run, and cuts a page left half
// written by a crash before resuming.
func TestExportCommandResumes(t *testing.T) {
	t.Parallel()
	env := apptest.New(t, apptest.Options{WallClock: true})
	for i := 0; i < 25; i++ {
		res := env.Partner("acme", http.MethodPost, "/integrations/users", []byte(fmt.Sprintf(`{"externalUserId":"c%d"}`, i)))
		require.Equal(t, http.StatusCreated, res.StatusCode)
	}
	env.WaitExportable()
	dir := t.TempDir()
	out, state := filepath.Join(dir, "users.ndjson"), filepath.Join(dir, "users.ndjson.state")
	c := &exportClient{base: env.Server.URL, slug: "acme", secret: []byte(demo.Acme.HMACSecret), http: env.Server.Client()}
	var progress bytes.Buffer
	require.NoError(t, c.run(context.Background(), out, state, 10, &progress))
	require.Len(t, lines(t, out), 25)
	require.Contains(t, progress.String(), "exported 25 users in 3 pages")

	// Nothing new: nothing appended.
	require.NoError(t, c.run(context.Background(), out, state, 10, io.Discard))
	require.Len(t, lines(t, out), 25)

	// Two changes, then a crash left junk after the saved state.
	for _, ext := range []string{"c3", "c4"} {
		res := env.Partner("acme", http.MethodPost, "/integrations/actions", []byte(`{"externalUserId":"`+ext+`","action":"purchase","points":5}`))
		require.Equal(t, http.StatusCreated, res.StatusCode)
	}
	env.WaitExportable()
	f, err := os.OpenFile(out, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString(`{"userId":"half-written`)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	require.NoError(t, c.run(context.Background(), out, state, 10, io.Discard))
	all := lines(t, out)
	require.Len(t, all, 27)
	require.EqualValues(t, 5, all[25]["balance"])
	require.Nil(t, all[25]["profile"], "only the balance changed")

	// A wrong secret fails loudly and keeps the state.
	before, _ := os.ReadFile(state)
	bad := &exportClient{base: env.Server.URL, slug: "acme", secret: []byte("wrong-secret-wrong"), http: env.Server.Client()}
	require.ErrorContains(t, bad.run(context.Background(), out, state, 10, io.Discard), "INVALID_SIGNATURE")
	after, _ := os.ReadFile(state)
	require.Equal(t, before, after)
}
