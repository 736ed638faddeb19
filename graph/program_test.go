package graph_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/dbtest"
	"github.com/perkshq/perks/internal/earning"
	"github.com/perkshq/perks/internal/ledger"
)

const trigger = `mutation($code: String!, $key: String!) {
  triggerAction(code: $code, idempotencyKey: $key) { balance entry { id kind points balanceAfter action } }
}`

func putRule(t *testing.T, env *apptest.Env, code string, in earning.RuleInput) {
	t.Helper()
	_, _, err := env.App.Earning.PutRule(context.Background(), env.DB.Bun, env.Acme.Partner.ID, code, in)
	require.NoError(t, err)
}

func ptr[T any](v T) *T { return &v }

// TestTriggerActionDailyCapUnderLoad: 200 concurrent triggers against a
// per-day cap of 5 earn exactly 5 times.
func TestTriggerActionDailyCapUnderLoad(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	putRule(t, env, "tap", earning.RuleInput{Name: "Tap", Points: 3, ClientTriggerable: true, DailyCap: ptr(5), Enabled: true})
	tok := env.Token("acme", "tapper", nil)
	require.Empty(t, env.GraphQL(tok, `{ me { id } }`, nil).Errors)

	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[string]int{}
	sem := make(chan struct{}, 50)
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			res := env.GraphQL(tok, trigger, map[string]any{"code": "tap", "key": fmt.Sprintf("tap-%d", i)})
			mu.Lock()
			codes[res.ErrorCode()]++
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	require.Equal(t, map[string]int{"": 5, "DAILY_CAP_REACHED": 195}, codes)
	var n int
	require.NoError(t, env.DB.Bun.NewRaw("SELECT count(*) FROM ledger_entries WHERE action_code = 'tap'").Scan(context.Background(), &n))
	require.Equal(t, 5, n)
	require.NoError(t, ledger.CheckInvariants(context.Background(), env.DB.Bun))

	// The next day (UTC for acme) the cap resets.
	env.Clock.Advance(24 * time.Hour)
	tok = env.Token("acme", "tapper", nil)
	require.Empty(t, env.GraphQL(tok, trigger, map[string]any{"code": "tap", "key": "tomorrow"}).Errors)
}

// TestTriggerActionRules covers each typed error, the idempotent retry and
// that a refusal changes nothing.
func TestTriggerActionRules(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	putRule(t, env, "off", earning.RuleInput{Name: "Off", Points: 1, ClientTriggerable: true, Enabled: false})
	future := env.Now().Add(time.Hour)
	putRule(t, env, "later", earning.RuleInput{Name: "Later", Points: 1, ClientTriggerable: true, ActiveFrom: &future, Enabled: true})
	_, _, err := env.App.Earning.PutRule(context.Background(), env.DB.Bun, env.Globex.Partner.ID, "globex_tap", earning.RuleInput{Name: "G", Points: 1, ClientTriggerable: true, Enabled: true})
	require.NoError(t, err)
	tok := env.Token("acme", "rules-user", nil)

	first := env.GraphQL(tok, trigger, map[string]any{"code": "watch_video", "key": "v1"})
	require.Empty(t, first.Errors)
	var got struct {
		TriggerAction struct {
			Balance int
			Entry   struct {
				ID     string
				Kind   string
				Points int
				Action string
			}
		}
	}
	require.NoError(t, json.Unmarshal(first.Data, &got))
	require.Equal(t, 5, got.TriggerAction.Balance)
	require.Equal(t, "earn", got.TriggerAction.Entry.Kind)
	require.Equal(t, "watch_video", got.TriggerAction.Entry.Action)

	// Retrying the same attempt returns the same entry and earns nothing.
	again := env.GraphQL(tok, trigger, map[string]any{"code": "watch_video", "key": "v1"})
	require.JSONEq(t, string(first.Data), string(again.Data))
	reused := env.GraphQL(tok, trigger, map[string]any{"code": "daily_login", "key": "v1"})
	require.Equal(t, "IDEMPOTENCY_KEY_REUSED", reused.ErrorCode())

	cases := []struct {
		name, code, key, want string
	}{
		{"cooldown", "watch_video", "v2", "COOLDOWN"},
		{"server-only action", "purchase", "p1", "ACTION_NOT_ALLOWED"},
		{"disabled", "off", "o1", "ACTION_INACTIVE"},
		{"not yet active", "later", "l1", "ACTION_INACTIVE"},
		{"unknown", "nope", "n1", "ACTION_NOT_FOUND"},
		{"another partner's action", "globex_tap", "g1", "ACTION_NOT_FOUND"},
		{"invalid code", "Not A Code", "i1", "INVALID_FIELD"},
		{"invalid key", "daily_login", "has space", "IDEMPOTENCY_KEY_INVALID"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := dbtest.Snapshot(t, env.DB.Bun)
			res := env.GraphQL(tok, trigger, map[string]any{"code": c.code, "key": c.key})
			require.Equal(t, c.want, res.ErrorCode(), "%+v", res.Errors)
			require.Equal(t, before, dbtest.Snapshot(t, env.DB.Bun))
		})
	}
	res := env.GraphQL(tok, trigger, map[string]any{"code": "watch_video", "key": "v3"})
	require.Equal(t, float64(60), res.Errors[0].Extensions["retryAfterSeconds"])
	env.Clock.Advance(61 * time.Second)
	require.Empty(t, env.GraphQL(tok, trigger, map[string]any{"code": "watch_video", "key": "v4"}).Errors)

	require.Empty(t, env.GraphQL(tok, trigger, map[string]any{"code": "complete_profile", "key": "c1"}).Errors)
	env.Clock.Advance(48 * time.Hour)
	tok = env.Token("acme", "rules-user", nil)
	require.Equal(t, "LIFETIME_CAP_REACHED", env.GraphQL(tok, trigger, map[string]any{"code": "complete_profile", "key": "c2"}).ErrorCode())

	require.Equal(t, "UNAUTHENTICATED", env.GraphQL("", trigger, map[string]any{"code": "daily_login", "key": "x"}).ErrorCode())
}

func TestProgramAndHistory(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)

	// Public program info by slug, without a token.
	pub := env.GraphQL("", `{ program(partnerSlug: "acme") { name currencyName partner { slug displayName } actions { code points dailyCap remainingToday } } }`, nil)
	require.Empty(t, pub.Errors)
	var p struct {
		Program struct {
			Name, CurrencyName string
			Partner            struct{ Slug, DisplayName string }
			Actions            []struct {
				Code           string
				Points         int
				DailyCap       *int
				RemainingToday *int
			}
		}
	}
	require.NoError(t, json.Unmarshal(pub.Data, &p))
	require.Equal(t, "Acme Rewards", p.Program.Name)
	require.Equal(t, "points", p.Program.CurrencyName)
	codes := []string{}
	for _, a := range p.Program.Actions {
		codes = append(codes, a.Code)
		require.Nil(t, a.RemainingToday, "no user, no remaining caps")
	}
	require.Equal(t, []string{"complete_profile", "daily_login", "watch_video"}, codes, "only client-triggerable actions")
	require.Equal(t, "NOT_FOUND", env.GraphQL("", `{ program(partnerSlug: "nobody") { name } }`, nil).ErrorCode())
	require.Equal(t, "MISSING_FIELD", env.GraphQL("", `{ program { name } }`, nil).ErrorCode())

	// With a token: the user's remaining caps (initialcheckstore).
	tok := env.Token("acme", "hist-user", nil)
	require.Empty(t, env.GraphQL(tok, trigger, map[string]any{"code": "daily_login", "key": "d1"}).Errors)
	mine := env.GraphQL(tok, `{ program { actions { code remainingToday } } me { balance lifetimePoints } }`, nil)
	require.Empty(t, mine.Errors)
	require.Contains(t, string(mine.Data), `{"code":"daily_login","remainingToday":0}`)
	require.Contains(t, string(mine.Data), `"balance":10,"lifetimePoints":10`)
	require.Equal(t, "FORBIDDEN", env.GraphQL(tok, `{ program(partnerSlug: "globex") { name } }`, nil).ErrorCode())

	// History: 5 earns and a burn through the partner API; pages of 2.
	for i := 0; i < 4; i++ {
		res := env.Partner("acme", http.MethodPost, "/integrations/actions", []byte(fmt.Sprintf(`{"externalUserId":"hist-user","action":"purchase","points":%d}`, i+1)))
		require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	}
	res := env.Partner("acme", http.MethodPost, "/integrations/users/hist-user/adjustments", []byte(`{"points":-3,"reason":"correction"}`))
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)

	// Each earn says how its points were computed; the adjustment has no breakdown.
	bd := env.GraphQL(tok, `{ history(first: 2) { edges { node { kind breakdown } } } }`, nil)
	require.Empty(t, bd.Errors)
	require.Contains(t, string(bd.Data), `{"kind":"adjust","breakdown":null}`)
	var hist struct {
		History struct {
			Edges []struct{ Node struct{ Breakdown *string } }
		}
	}
	require.NoError(t, json.Unmarshal(bd.Data, &hist))
	require.JSONEq(t, `{"base":{"method":"variable","points":4},"steps":[],"total":4}`, *hist.History.Edges[1].Node.Breakdown)

	var all []int
	var after any
	for page := 0; page < 10; page++ {
		h := env.GraphQL(tok, `query($after: String) { history(first: 2, after: $after) { edges { cursor node { points kind } } pageInfo { hasNextPage endCursor } } }`, map[string]any{"after": after})
		require.Empty(t, h.Errors)
		var conn struct {
			History struct {
				Edges []struct {
					Node struct{ Points int }
				}
				PageInfo struct {
					HasNextPage bool
					EndCursor   *string
				}
			}
		}
		require.NoError(t, json.Unmarshal(h.Data, &conn))
		for _, e := range conn.History.Edges {
			all = append(all, e.Node.Points)
		}
		if !conn.History.PageInfo.HasNextPage {
			break
		}
		after = *conn.History.PageInfo.EndCursor
	}
	require.Equal(t, []int{-3, 4, 3, 2, 1, 10}, all)

	burns := env.GraphQL(tok, `{ history(kind: BURN) { edges { node { points reason } } } }`, nil)
	require.JSONEq(t, `{"history":{"edges":[{"node":{"points":-3,"reason":"correction"}}]}}`, string(burns.Data))
	require.Equal(t, "INVALID_FIELD", env.GraphQL(tok, `{ history(first: 500) { edges { cursor } } }`, nil).ErrorCode())
	require.Equal(t, "INVALID_FIELD", env.GraphQL(tok, `{ history(after: "garbage") { edges { cursor } } }`, nil).ErrorCode())
}
