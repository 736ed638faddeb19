package webhook_test

import (
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/event"
	"github.com/perkshq/perks/internal/webhook"
)

// TestSetEndpointEnabled: enabling or disabling changes only the state
// (URL, description, subscriptions and secret stay); an operator's disable
// or enable clears the reason Perks gave; enabling re-checks the URL
// policy, disabling does not; an unknown id is not found.
func TestSetEndpointEnabled(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ep, _ := b.endpoint(t, "http://127.0.0.1:9/hook", event.UserCreated)
	_, err := b.tx.NewRaw("UPDATE webhook_endpoints SET description = 'keep me', disabled_reason = 'receiver gone' WHERE id = ?", ep.ID).Exec(b.ctx)
	require.NoError(t, err)

	got, err := b.svc.SetEndpointEnabledTx(b.ctx, b.tx, b.partner.ID, ep.ID, false)
	require.NoError(t, err)
	require.False(t, got.Enabled)
	require.Nil(t, got.DisabledReason, "the operator's disable replaces Perks' reason")
	stored, err := b.svc.Endpoint(b.ctx, b.tx, b.partner.ID, ep.ID)
	require.NoError(t, err)
	require.False(t, stored.Enabled)
	require.Equal(t, "keep me", stored.Description)
	require.Equal(t, ep.URL, stored.URL)
	require.Equal(t, []string{event.UserCreated}, stored.EventTypes)

	// A disabled endpoint whose URL the policy now forbids stays disabled.
	strict := *b.svc
	strict.Policy = &webhook.URLPolicy{RequireHTTPS: true}
	_, err = strict.SetEndpointEnabledTx(b.ctx, b.tx, b.partner.ID, ep.ID, true)
	require.True(t, apperr.Is(err, apperr.CodeInvalidField) || apperr.Is(err, apperr.CodeWebhookURLForbidden), "%v", err)
	_, err = strict.SetEndpointEnabledTx(b.ctx, b.tx, b.partner.ID, ep.ID, false)
	require.NoError(t, err, "disabling never depends on the URL")

	got, err = b.svc.SetEndpointEnabledTx(b.ctx, b.tx, b.partner.ID, ep.ID, true)
	require.NoError(t, err)
	require.True(t, got.Enabled)
	stored, err = b.svc.Endpoint(b.ctx, b.tx, b.partner.ID, ep.ID)
	require.NoError(t, err)
	require.True(t, stored.Enabled)
	require.Equal(t, "keep me", stored.Description)

	_, err = b.svc.SetEndpointEnabledTx(b.ctx, b.tx, b.partner.ID, uuid.New(), true)
	require.True(t, apperr.Is(err, apperr.CodeNotFound), "%v", err)
}
