package webhook_test

import (
	"encoding/json"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/event"
	"github.com/perkshq/perks/internal/user"
)

// TestUserErasedEvent: erasing a user sends user.erased, naming the user
// by Perks' id only, with no personal data, while the user's earlier events
// and their deliveries go with the user.
func TestUserErasedEvent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rcv := newReceiver(t)
	b.endpoint(t, rcv.URL, event.UserCreated, event.UserErased)
	email := "gone.for.good@example.com"
	res, err := b.users.UpsertTx(b.ctx, b.tx, b.partner.ID, "ext-erased@example.com", user.Profile{Email: &email})
	require.NoError(t, err)
	require.Len(t, b.deliveryJobs(t), 1)

	require.NoError(t, b.users.EraseTx(b.ctx, b.tx, b.partner.ID, []uuid.UUID{res.User.ID}))
	var n int
	require.NoError(t, b.tx.NewRaw("SELECT count(*) FROM webhook_deliveries WHERE partner_id = ? AND event_type = ?", b.partner.ID, event.UserCreated).Scan(b.ctx, &n))
	require.Zero(t, n, "the user's earlier deliveries are erased with them")

	jobs := b.deliveryJobs(t)
	require.Len(t, jobs, 2)
	b.work(t, jobs[1].JobRow)
	reqs := rcv.requests()
	require.Len(t, reqs, 1)
	require.NotContains(t, string(reqs[0].Body), email)
	require.NotContains(t, string(reqs[0].Body), "ext-erased")
	var p struct {
		Type string         `json:"type"`
		Data map[string]any `json:"data"`
	}
	require.NoError(t, json.Unmarshal(reqs[0].Body, &p))
	require.Equal(t, event.UserErased, p.Type)
	require.Equal(t, res.User.ID.String(), p.Data["userId"])
	require.Contains(t, p.Data, "externalUserId")
	require.Nil(t, p.Data["externalUserId"])
	require.NotEmpty(t, p.Data["erasedAt"])
	require.Len(t, p.Data, 3)
}
