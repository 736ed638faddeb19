package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/audit"
	"github.com/perkshq/perks/internal/dbtest"
)

func TestRedact(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		in   any
		want string
	}{
		{"nil", nil, ""},
		{"flat", map[string]any{"description": "ok", "secret": "s3", "privateKey": "-----BEGIN", "apiKey": "perks_ak_x", "password": "pw"},
			`{"description":"ok","secret":"[redacted]","privateKey":"[redacted]","apiKey":"[redacted]","password":"[redacted]"}`},
		{"nested", map[string]any{"endpoint": map[string]any{"url": "https://x", "signingSecret": "abc"}, "list": []any{map[string]any{"token": "t"}}},
			`{"endpoint":{"url":"https://x","signingSecret":"[redacted]"},"list":[{"token":"[redacted]"}]}`},
		{"empty secret stays empty", map[string]any{"secret": ""}, `{"secret":""}`},
		{"raw json", json.RawMessage(`{"totp":"123456","role":"owner"}`), `{"totp":"[redacted]","role":"owner"}`},
		{"struct", struct {
			Kind      string `json:"kind"`
			SecretPEM string `json:"secretPem"`
		}{"ed25519", "x"}, `{"kind":"ed25519","secretPem":"[redacted]"}`},
	} {
		got, err := audit.Redact(tc.in)
		require.NoError(t, err, tc.name)
		if tc.want == "" {
			require.Nil(t, got, tc.name)
			continue
		}
		require.JSONEq(t, tc.want, string(got), tc.name)
	}
	_, err := audit.Redact(json.RawMessage(`{not json`))
	require.Error(t, err)
}

func TestRecordListCSV(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tx := dbtest.Tx(t)
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	l := &audit.Log{Now: func() time.Time { return now }}
	mine, theirs := uuid.New(), uuid.New()
	actor := audit.Actor{Kind: audit.ActorAccount, ID: "a1", Label: "ana@example.com"}
	for i := range 3 {
		_, err := l.RecordTx(ctx, tx, audit.Change{Realm: audit.RealmPartner, RealmID: mine, Actor: actor, Action: "thing.edit", Target: "=cmd|' /C calc'!A0",
			Before: map[string]any{"n": i}, After: map[string]any{"n": i + 1, "secret": "shh"}})
		require.NoError(t, err)
	}
	_, err := l.RecordTx(ctx, tx, audit.Change{Realm: audit.RealmPartner, RealmID: theirs, Actor: actor, Action: "other.partner"})
	require.NoError(t, err)

	got, err := l.List(ctx, tx, audit.ListParams{Realm: audit.RealmPartner, RealmID: mine})
	require.NoError(t, err)
	require.Len(t, got, 3, "only the realm id's entries")
	require.JSONEq(t, `{"n":3,"secret":"[redacted]"}`, string(got[0].After), "newest first, redacted")
	page, err := l.List(ctx, tx, audit.ListParams{Realm: audit.RealmPartner, RealmID: mine, BeforeID: got[0].ID, Limit: 1})
	require.NoError(t, err)
	require.Len(t, page, 1)
	require.Equal(t, got[1].ID, page[0].ID)

	var buf bytes.Buffer
	require.NoError(t, audit.WriteCSV(&buf, got))
	require.NotContains(t, buf.String(), ",=cmd", "formula cells are neutralised")
	require.Contains(t, buf.String(), ",'=cmd")
	require.NotContains(t, buf.String(), "shh")
}
