package webhook_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
)

// TestSandboxPayloadsAreMarked: a sandbox's deliveries carry
// "environment":"sandbox" (inside the signed body), live ones have no such
// field (their schema is unchanged), and each receives only its own
// partner's events.
func TestSandboxPayloadsAreMarked(t *testing.T) {
	t.Parallel()
	env := apptest.New(t, apptest.Options{Workers: true})
	liveRcv, sandboxRcv := newReceiver(t), newReceiver(t)
	for slug, rcv := range map[string]*receiver{"acme": liveRcv, "acme-sandbox": sandboxRcv} {
		res := env.PartnerJSON(slug, http.MethodPost, "/integrations/webhook-endpoints", map[string]any{"url": rcv.URL})
		require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
		for i := range 2 {
			body := fmt.Sprintf(`{"externalUserId":"%s-%d"}`, slug, i)
			require.Equal(t, http.StatusCreated, env.Partner(slug, http.MethodPost, "/integrations/users", []byte(body)).StatusCode)
		}
	}
	waitJobsIdle(t, env)
	for _, c := range []struct {
		rcv  *receiver
		slug string
		env  any
	}{{liveRcv, "acme", nil}, {sandboxRcv, "acme-sandbox", "sandbox"}} {
		reqs := c.rcv.requests()
		require.Len(t, reqs, 2, c.slug)
		for _, r := range reqs {
			var p map[string]any
			require.NoError(t, json.Unmarshal(r.Body, &p))
			require.Equal(t, c.slug, p["partner"].(map[string]any)["slug"])
			got, present := p["environment"]
			require.Equal(t, c.env != nil, present, "%s: %s", c.slug, r.Body)
			require.Equal(t, c.env, got)
		}
	}
}
