package partner_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/audit"
	"github.com/perkshq/perks/internal/dbtest"
	"github.com/perkshq/perks/internal/partner"
)

// TestCheckEnabledStatus: a pending or suspended partner is refused for
// every audience with its own code, before the access switch; an active
// (or, built in memory, status-less) partner is not.
func TestCheckEnabledStatus(t *testing.T) {
	t.Parallel()
	for _, a := range []partner.Audience{partner.AudienceOperator, partner.AudienceConsumer} {
		require.NoError(t, (&partner.Partner{APIEnabled: true, Status: partner.StatusActive}).CheckEnabled(a))
		require.NoError(t, (&partner.Partner{APIEnabled: true}).CheckEnabled(a))
		require.Equal(t, apperr.CodePartnerPending, apperr.CodeOf((&partner.Partner{APIEnabled: true, Status: partner.StatusPending}).CheckEnabled(a)))
		require.Equal(t, apperr.CodePartnerSuspended, apperr.CodeOf((&partner.Partner{APIEnabled: false, Status: partner.StatusSuspended}).CheckEnabled(a)))
	}
}

// TestSetStatus walks the onboarding transitions: the console's partners
// start pending, approve, suspend and resume move them and are audited in
// the platform realm; repeating an action is a quiet no-op; an action that
// does not apply is a CONFLICT naming the one that does, changing nothing.
func TestSetStatus(t *testing.T) {
	t.Parallel()
	type bundle struct {
		svc *partner.Service
		log *audit.Log
		tx  bun.Tx
		p   *partner.Partner
	}
	ctx := context.Background()
	cli := audit.Actor{Kind: audit.ActorOperator, Label: "cli"}
	setup := func(t *testing.T, status string) *bundle {
		tx := dbtest.Tx(t)
		now := time.Date(2026, 11, 29, 15, 0, 0, 0, time.UTC)
		svc := &partner.Service{Now: func() time.Time { return now }}
		p, err := svc.Upsert(ctx, tx, partner.CreateParams{Slug: "onboard-" + uuid.NewString()[:8], Name: "Onboard", Status: status})
		require.NoError(t, err)
		return &bundle{svc: svc, log: &audit.Log{Now: svc.Now}, tx: tx, p: p}
	}
	entries := func(t *testing.T, b *bundle) []audit.Entry {
		var out []audit.Entry
		require.NoError(t, b.tx.NewSelect().Model(&out).Where("realm = 'platform' AND target = ?", "partner "+b.p.Slug).OrderExpr("id").Scan(ctx))
		return out
	}
	t.Run("DefaultsToActive", func(t *testing.T) {
		t.Parallel()
		b := setup(t, "")
		require.Equal(t, partner.StatusActive, b.p.Status, "the CLI and the seed create active partners")
		_, err := b.svc.Upsert(ctx, b.tx, partner.CreateParams{Slug: "bad-" + uuid.NewString()[:8], Name: "Bad", Status: "approved"})
		require.Equal(t, apperr.CodeInvalidField, apperr.CodeOf(err))
	})
	t.Run("Lifecycle", func(t *testing.T) {
		t.Parallel()
		b := setup(t, partner.StatusPending)
		for _, step := range []struct{ action, want string }{
			{partner.ActionApprove, partner.StatusActive},
			{partner.ActionApprove, partner.StatusActive}, // no-op
			{partner.ActionSuspend, partner.StatusSuspended},
			{partner.ActionResume, partner.StatusActive},
		} {
			p, err := b.svc.SetStatusTx(ctx, b.tx, b.log, cli, b.p.ID, step.action)
			require.NoError(t, err, step.action)
			require.Equal(t, step.want, p.Status)
			stored, err := b.svc.ByID(ctx, b.tx, b.p.ID)
			require.NoError(t, err)
			require.Equal(t, step.want, stored.Status)
			require.NotNil(t, stored.StatusChangedAt)
		}
		got := entries(t, b)
		require.Len(t, got, 3, "the repeated approve records nothing")
		require.Equal(t, []string{"partner.approve", "partner.suspend", "partner.resume"}, []string{got[0].Action, got[1].Action, got[2].Action})
		require.JSONEq(t, `{"status":"pending"}`, string(got[0].Before))
		require.Equal(t, "cli", got[0].ActorLabel)
	})
	t.Run("Refused", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct{ from, action, hint string }{
			{partner.StatusPending, partner.ActionResume, "approve it instead"},
			{partner.StatusSuspended, partner.ActionApprove, "resume it instead"},
			{partner.StatusPending, "delete", ""},
		} {
			b := setup(t, tc.from)
			_, err := b.svc.SetStatusTx(ctx, b.tx, b.log, cli, b.p.ID, tc.action)
			if tc.hint == "" {
				require.Equal(t, apperr.CodeInvalidField, apperr.CodeOf(err))
			} else {
				require.Equal(t, apperr.CodeConflict, apperr.CodeOf(err))
				require.Contains(t, apperr.As(err).Message, tc.hint)
			}
			stored, err := b.svc.ByID(ctx, b.tx, b.p.ID)
			require.NoError(t, err)
			require.Equal(t, tc.from, stored.Status)
			require.Empty(t, entries(t, b))
		}
		b := setup(t, partner.StatusPending)
		_, err := b.svc.SetStatusTx(ctx, b.tx, b.log, cli, uuid.New(), partner.ActionApprove)
		require.Equal(t, apperr.CodeNotFound, apperr.CodeOf(err))
	})
}
