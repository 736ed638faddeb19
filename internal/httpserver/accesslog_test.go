package httpserver_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
)

// TestAccessLogCarriesTheRouteNotThePath: external user ids are emails for
// some partners, so the access log records the matched route pattern, never
// the raw path, whatever the route, the status or the escaping.
func TestAccessLogCarriesTheRouteNotThePath(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	email := "alice.private@example.com"
	body := []byte(`{"externalUserId":"` + email + `","email":"` + email + `"}`)
	require.Equal(t, http.StatusCreated, env.Partner("acme", http.MethodPost, "/integrations/users", body).StatusCode)

	requests := []struct {
		method, path string
		status       int
		route        string
	}{
		{http.MethodGet, "/integrations/users/" + email, http.StatusOK, "GET /integrations/users/{externalUserId}"},
		{http.MethodGet, "/integrations/users/" + url.PathEscape(strings.ReplaceAll(email, "@", "%40")), http.StatusNotFound, "GET /integrations/users/{externalUserId}"},
		{http.MethodGet, "/integrations/users/" + email + "/ranking", http.StatusOK, "GET /integrations/users/{externalUserId}/ranking"},
		{http.MethodGet, "/no/such/route/" + email, http.StatusNotFound, ""},
		{http.MethodDelete, "/integrations/users/" + email, http.StatusNoContent, "DELETE /integrations/users/{externalUserId}"},
	}
	for _, r := range requests {
		res := env.Partner("acme", r.method, r.path, nil)
		require.Equal(t, r.status, res.StatusCode, "%s %s: %s", r.method, r.path, res.Body)
	}

	logs := env.Logs.String()
	require.NotContains(t, logs, "alice.private", "the external id (an email) reached the log")
	routes := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) != nil || line["msg"] != "request" {
			continue
		}
		require.NotContains(t, line, "path")
		route, _ := line["route"].(string)
		require.NotEmpty(t, route)
		routes[route] = true
	}
	for _, r := range requests {
		if r.route != "" {
			require.True(t, routes[r.route], "no access line with route %q in %v", r.route, routes)
		}
	}
}
