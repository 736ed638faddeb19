package rest_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/dbtest"
	"github.com/perkshq/perks/internal/demo"
	"github.com/perkshq/perks/internal/earning"
	"github.com/perkshq/perks/internal/ledger"
)

func provision(t *testing.T, env *apptest.Env, slug, ext string) string {
	t.Helper()
	res := env.Partner(slug, http.MethodPost, "/integrations/users", []byte(`{"externalUserId":"`+ext+`"}`))
	require.Contains(t, []int{200, 201}, res.StatusCode, "%s", res.Body)
	return res.JSON(t)["userId"].(string)
}

func entries(t *testing.T, env *apptest.Env) int {
	t.Helper()
	var n int
	require.NoError(t, env.DB.Bun.NewRaw("SELECT count(*) FROM ledger_entries").Scan(context.Background(), &n))
	return n
}

// TestEarnIsExactlyOnce: a retry with the same Idempotency-Key (or
// reference) gets the original bytes and earns nothing; the same key with
// another body is refused; keys of two partners never mix.
func TestEarnIsExactlyOnce(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	provision(t, env, "acme", "alice")
	key := map[string]string{"Idempotency-Key": "earn-001"}
	body := []byte(`{"externalUserId":"alice","action":"purchase","points":42}`)

	first := env.Partner("acme", http.MethodPost, "/integrations/actions", body, key)
	require.Equal(t, http.StatusCreated, first.StatusCode, "%s", first.Body)
	got := first.JSON(t)
	require.EqualValues(t, 42, got["points"])
	require.EqualValues(t, 42, got["balance"])
	require.Equal(t, "purchase", got["action"])

	env.Clock.Advance(time.Second)
	again := env.Partner("acme", http.MethodPost, "/integrations/actions", body, key)
	require.Equal(t, first.StatusCode, again.StatusCode)
	require.Equal(t, string(first.Body), string(again.Body), "byte for byte")
	require.Equal(t, "true", again.Header.Get("Idempotent-Replayed"))
	require.Equal(t, 1, entries(t, env))

	other := env.Partner("acme", http.MethodPost, "/integrations/actions", []byte(`{"externalUserId":"alice","action":"purchase","points":43}`), key)
	require.Equal(t, http.StatusUnprocessableEntity, other.StatusCode)
	require.Equal(t, "IDEMPOTENCY_KEY_REUSED", other.Code())

	// The same key on another route is another request.
	adj := env.Partner("acme", http.MethodPost, "/integrations/users/alice/adjustments", []byte(`{"points":1,"reason":"x"}`), key)
	require.Equal(t, "IDEMPOTENCY_KEY_REUSED", adj.Code())

	// Globex may use the same key for its own request.
	provision(t, env, "globex", "alice")
	_, _, err := env.App.Earning.PutRule(context.Background(), env.DB.Bun, env.Globex.Partner.ID, "purchase", acmePurchaseRule())
	require.NoError(t, err)
	g := env.Partner("globex", http.MethodPost, "/integrations/actions", body, key)
	require.Equal(t, http.StatusCreated, g.StatusCode, "%s", g.Body)
	require.Empty(t, g.Header.Get("Idempotent-Replayed"))
	require.NotEqual(t, got["userId"], g.JSON(t)["userId"])
	require.Equal(t, 2, entries(t, env))

	// A reference makes the earn exactly-once without a header.
	ref := []byte(`{"externalUserId":"alice","action":"purchase","points":5,"reference":"order-77"}`)
	r1 := env.Partner("acme", http.MethodPost, "/integrations/actions", ref)
	r2 := env.Partner("acme", http.MethodPost, "/integrations/actions", ref)
	require.Equal(t, http.StatusCreated, r1.StatusCode, "%s", r1.Body)
	require.Equal(t, string(r1.Body), string(r2.Body))
	require.Equal(t, "order-77", r1.JSON(t)["reference"])
	r3 := env.Partner("acme", http.MethodPost, "/integrations/actions", []byte(`{"externalUserId":"alice","action":"purchase","points":6,"reference":"order-77"}`))
	require.Equal(t, "IDEMPOTENCY_KEY_REUSED", r3.Code())
	require.Equal(t, 3, entries(t, env))
	require.NoError(t, ledger.CheckInvariants(context.Background(), env.DB.Bun))
}

// TestConcurrentDuplicateEarns: 50 identical earns with one key at once
// give one entry and 50 identical answers.
func TestConcurrentDuplicateEarns(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	provision(t, env, "acme", "bob")
	body := []byte(`{"externalUserId":"bob","action":"referral"}`)
	var wg sync.WaitGroup
	bodies := make([]string, 50)
	statuses := make([]int, 50)
	for i := range bodies {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			res := env.Partner("acme", http.MethodPost, "/integrations/actions", body, map[string]string{"Idempotency-Key": "same-key"})
			bodies[i], statuses[i] = string(res.Body), res.StatusCode
		}(i)
	}
	wg.Wait()
	for i := range bodies {
		require.Equal(t, http.StatusCreated, statuses[i], bodies[i])
		require.Equal(t, bodies[0], bodies[i])
	}
	require.Equal(t, 1, entries(t, env))
	require.NoError(t, ledger.CheckInvariants(context.Background(), env.DB.Bun))
}

// TestEarnBadInput: each bad request answers its code and changes nothing.
func TestEarnBadInput(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	provision(t, env, "acme", "carol")
	provision(t, env, "globex", "gina")
	_, _, err := env.App.Earning.PutRule(context.Background(), env.DB.Bun, env.Globex.Partner.ID, "globex_only", acmePurchaseRule())
	require.NoError(t, err)
	res := env.Partner("acme", http.MethodDelete, "/integrations/earning-rules/referral", nil)
	require.Equal(t, http.StatusNoContent, res.StatusCode)

	cases := []struct {
		name, path, body string
		status           int
		code, field      string
	}{
		{"negative points", "/integrations/actions", `{"externalUserId":"carol","action":"purchase","points":-5}`, 400, "POINTS_OUT_OF_RANGE", "points"},
		{"zero points", "/integrations/actions", `{"externalUserId":"carol","action":"purchase","points":0}`, 400, "POINTS_OUT_OF_RANGE", "points"},
		{"fractional points", "/integrations/actions", `{"externalUserId":"carol","action":"purchase","points":1.5}`, 400, "INVALID_FIELD", "points"},
		{"exponent points", "/integrations/actions", `{"externalUserId":"carol","action":"purchase","points":1e3}`, 400, "INVALID_FIELD", "points"},
		{"string points", "/integrations/actions", `{"externalUserId":"carol","action":"purchase","points":"10"}`, 400, "INVALID_FIELD", "points"},
		{"points over the maximum", "/integrations/actions", `{"externalUserId":"carol","action":"purchase","points":1000000001}`, 400, "POINTS_OUT_OF_RANGE", "points"},
		{"points over int64", "/integrations/actions", `{"externalUserId":"carol","action":"purchase","points":99999999999999999999}`, 400, "INVALID_FIELD", "points"},
		{"points over the rule's maximum", "/integrations/actions", `{"externalUserId":"carol","action":"purchase","points":100001}`, 400, "POINTS_OUT_OF_RANGE", "points"},
		{"points on a fixed rule", "/integrations/actions", `{"externalUserId":"carol","action":"daily_login","points":5}`, 400, "VARIABLE_POINTS_NOT_ALLOWED", "points"},
		{"unknown action", "/integrations/actions", `{"externalUserId":"carol","action":"nope"}`, 404, "ACTION_NOT_FOUND", ""},
		{"disabled action", "/integrations/actions", `{"externalUserId":"carol","action":"referral"}`, 422, "ACTION_INACTIVE", ""},
		{"another partner's action", "/integrations/actions", `{"externalUserId":"carol","action":"globex_only"}`, 404, "ACTION_NOT_FOUND", ""},
		{"another partner's user", "/integrations/actions", `{"externalUserId":"gina","action":"purchase"}`, 404, "USER_NOT_FOUND", ""},
		{"unknown user", "/integrations/actions", `{"externalUserId":"nobody","action":"purchase"}`, 404, "USER_NOT_FOUND", ""},
		{"bad action code", "/integrations/actions", `{"externalUserId":"carol","action":"Bad Code"}`, 400, "INVALID_FIELD", "action"},
		{"missing action", "/integrations/actions", `{"externalUserId":"carol"}`, 400, "MISSING_FIELD", "action"},
		{"missing user", "/integrations/actions", `{"action":"purchase"}`, 400, "MISSING_FIELD", "externalUserId"},
		{"future occurredAt", "/integrations/actions", `{"externalUserId":"carol","action":"purchase","occurredAt":"2999-01-01T00:00:00Z"}`, 400, "INVALID_FIELD", "occurredAt"},
		{"bad occurredAt", "/integrations/actions", `{"externalUserId":"carol","action":"purchase","occurredAt":"yesterday"}`, 400, "INVALID_FIELD", "occurredAt"},
		{"metadata not an object", "/integrations/actions", `{"externalUserId":"carol","action":"purchase","metadata":[1]}`, 400, "INVALID_FIELD", "metadata"},
		{"reference with spaces inside", "/integrations/actions", `{"externalUserId":"carol","action":"purchase","reference":"a b"}`, 400, "INVALID_FIELD", "reference"},
		{"unknown field", "/integrations/actions", `{"externalUserId":"carol","action":"purchase","bonus":1}`, 400, "UNKNOWN_FIELD", "bonus"},
		{"adjust below zero", "/integrations/users/carol/adjustments", `{"points":-1,"reason":"oops"}`, 422, "INSUFFICIENT_POINTS", ""},
		{"adjust zero", "/integrations/users/carol/adjustments", `{"points":0,"reason":"oops"}`, 400, "POINTS_OUT_OF_RANGE", "points"},
		{"adjust fractional", "/integrations/users/carol/adjustments", `{"points":2.5,"reason":"oops"}`, 400, "INVALID_FIELD", "points"},
		{"adjust string", "/integrations/users/carol/adjustments", `{"points":"5","reason":"oops"}`, 400, "INVALID_FIELD", "points"},
		{"adjust over the maximum", "/integrations/users/carol/adjustments", `{"points":-1000000001,"reason":"oops"}`, 400, "POINTS_OUT_OF_RANGE", "points"},
		{"adjust without reason", "/integrations/users/carol/adjustments", `{"points":5}`, 400, "MISSING_FIELD", "reason"},
		{"adjust another partner's user", "/integrations/users/gina/adjustments", `{"points":5,"reason":"x"}`, 404, "USER_NOT_FOUND", ""},
		{"rule without points", "/integrations/earning-rules/new_rule", `{"name":"New"}`, 400, "MISSING_FIELD", "points"},
		{"rule with negative points", "/integrations/earning-rules/new_rule", `{"name":"New","points":-1}`, 400, "POINTS_OUT_OF_RANGE", "points"},
		{"rule with fractional cap", "/integrations/earning-rules/new_rule", `{"name":"New","points":1,"dailyCap":1.5}`, 400, "INVALID_FIELD", "dailyCap"},
		{"rule with zero cap", "/integrations/earning-rules/new_rule", `{"name":"New","points":1,"dailyCap":0}`, 400, "INVALID_FIELD", "dailyCap"},
		{"rule with bad code", "/integrations/earning-rules/New%20Rule", `{"name":"New","points":1}`, 400, "INVALID_FIELD", "code"},
		{"rule window reversed", "/integrations/earning-rules/new_rule", `{"name":"New","points":1,"activeFrom":"2027-01-01T00:00:00Z","activeUntil":"2026-01-01T00:00:00Z"}`, 400, "INVALID_FIELD", "activeUntil"},
		{"rule maxPoints without variable", "/integrations/earning-rules/new_rule", `{"name":"New","points":1,"maxPoints":5}`, 400, "INVALID_FIELD", "maxPoints"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := dbtest.Snapshot(t, env.DB.Bun)
			method := http.MethodPost
			if strings.HasPrefix(c.path, "/integrations/earning-rules/") {
				method = http.MethodPut
			}
			res := env.Partner("acme", method, c.path, []byte(c.body), map[string]string{"Idempotency-Key": "k-" + strings.ReplaceAll(c.name, " ", "-")})
			require.Equal(t, c.status, res.StatusCode, "%s", res.Body)
			require.Equal(t, c.code, res.Code(), "%s", res.Body)
			if c.field != "" {
				require.Equal(t, c.field, res.JSON(t)["field"], "%s", res.Body)
			}
			require.Equal(t, before, dbtest.Snapshot(t, env.DB.Bun), "nothing changed, idempotency key included")
		})
	}
}

func acmePurchaseRule() earning.RuleInput { return demo.AcmeRules["purchase"] }

// TestFailedWriteCannotBeReplayed: a signed write remembers its signature
// in its own transaction; when the write fails (and rolls back) the
// signature is still burnt, so replaying it after the state changed cannot
// make it succeed. A write that succeeded under a reference is answered
// from its stored response when resent.
func TestFailedWriteCannotBeReplayed(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	body := []byte(`{"externalUserId":"later","action":"referral"}`)
	sig := env.SignV1("dev_acme_secret_change_me", body)
	send := func() *apptest.Response {
		req, _ := http.NewRequest(http.MethodPost, env.Server.URL+"/integrations/actions", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Partner-Slug", "acme")
		req.Header.Set("X-Signature", sig)
		return env.Do(req)
	}
	require.Equal(t, "USER_NOT_FOUND", send().Code())
	provision(t, env, "acme", "later")
	require.Equal(t, "SIGNATURE_REPLAYED", send().Code(), "the refused request stays refused")
	require.Zero(t, entries(t, env))

	ok := []byte(`{"externalUserId":"later","action":"referral","reference":"r1"}`)
	sig = env.SignV1("dev_acme_secret_change_me", ok)
	body = ok
	first := send()
	require.Equal(t, http.StatusCreated, first.StatusCode)
	again := send()
	require.Equal(t, string(first.Body), string(again.Body))
	require.Equal(t, "true", again.Header.Get("Idempotent-Replayed"))
	require.Equal(t, 1, entries(t, env))
}

// TestEarnRoundTrips bounds what one signed earn sends PostgreSQL, counted
// on the pool (every statement, BEGIN and COMMIT included): BEGIN, the user
// with the rule and its policy (one statement), the balance, entry and lot,
// the event with its deliveries, the idempotency key with the response and
// the replay-cache entry (one statement), COMMIT: as many as the bare loop
// of cmd/bench. The partner and its secret come from the cache.
func TestEarnRoundTrips(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	provision(t, env, "acme", "alice")
	earn := func(i int) *apptest.Response {
		return env.Partner("acme", http.MethodPost, "/integrations/actions",
			[]byte(fmt.Sprintf(`{"externalUserId":"alice","action":"purchase","points":%d}`, i)),
			map[string]string{"Idempotency-Key": fmt.Sprintf("round-trips-%d", i)})
	}
	require.Equal(t, http.StatusCreated, earn(1).StatusCode, "warm up")
	// After the seed's own writes, the cache serves once their
	// notifications arrived (a write bypasses it until then).
	require.Eventually(t, env.App.Partners.Cache.Serving, 10*time.Second, time.Millisecond)
	require.Equal(t, http.StatusCreated, earn(2).StatusCode, "warm up the cache")
	n := env.DB.Statements.Count(func() {
		res := earn(3)
		require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
	})
	require.Equal(t, int64(6), n, "statements per earn:\n%s", env.DB.Statements.Texts())
}
