package audit_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/audit"
	"github.com/perkshq/perks/internal/dbtest"
)

// TestSearch: the console's audit log reads every realm, and each filter
// (realm, realm id, action prefix, actor, time window, page) narrows it.
func TestSearch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tx := dbtest.Tx(t)
	t0 := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	now := t0
	log := &audit.Log{Now: func() time.Time { return now }}
	tag := uuid.NewString()[:8] // this test's actors: the shared database may hold others
	acme, globex := uuid.New(), uuid.New()
	for i, c := range []audit.Change{
		{Realm: audit.RealmPartner, RealmID: acme, Action: "credential.create"},
		{Realm: audit.RealmPartner, RealmID: globex, Action: "account.invite"},
		{Realm: audit.RealmPlatform, Action: "partner.approve"},
		{Realm: audit.RealmPlatform, Action: "partner.suspend"},
		{Realm: audit.RealmMerchant, RealmID: uuid.New(), Action: "account.invite"},
	} {
		now = t0.Add(time.Duration(i) * time.Hour)
		c.Actor = audit.Actor{Kind: audit.ActorAccount, Label: "Ops-" + tag + map[bool]string{true: "-a", false: "-b"}[i%2 == 0]}
		_, err := log.RecordTx(ctx, tx, c)
		require.NoError(t, err)
	}
	actions := func(p audit.SearchParams) []string {
		t.Helper()
		if p.Actor == "" {
			p.Actor = "ops-" + tag
		}
		es, err := log.Search(ctx, tx, p)
		require.NoError(t, err)
		var out []string
		for _, e := range es {
			out = append(out, e.Action)
		}
		return out
	}
	require.Equal(t, []string{"account.invite", "partner.suspend", "partner.approve", "account.invite", "credential.create"}, actions(audit.SearchParams{}), "every realm, newest first")
	require.Equal(t, []string{"partner.suspend", "partner.approve"}, actions(audit.SearchParams{Realm: audit.RealmPlatform}))
	require.Equal(t, []string{"account.invite"}, actions(audit.SearchParams{RealmID: globex}))
	require.Equal(t, []string{"partner.suspend", "partner.approve"}, actions(audit.SearchParams{Action: "partner."}))
	require.Equal(t, []string{"account.invite", "partner.approve", "credential.create"}, actions(audit.SearchParams{Actor: "OPS-" + tag + "-A"}))
	require.Equal(t, []string{"partner.approve", "account.invite"}, actions(audit.SearchParams{From: t0.Add(time.Hour), To: t0.Add(3 * time.Hour)}))
	all, err := log.Search(ctx, tx, audit.SearchParams{Actor: "ops-" + tag, Limit: 2})
	require.NoError(t, err)
	require.Len(t, all, 2)
	require.Equal(t, []string{"partner.approve", "account.invite", "credential.create"}, actions(audit.SearchParams{BeforeID: all[1].ID}))
}
