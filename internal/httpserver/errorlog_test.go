package httpserver_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
)

// TestErrorLinesCarryCodeAndRequestID: the access line of an error answer
// carries its code (REST problem, or the first GraphQL error) next to the
// request id the client got in X-Request-Id, and the application's logger
// gives every error line a code and a request id, whoever logs it.
func TestErrorLinesCarryCodeAndRequestID(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)

	rest := env.Partner("acme", http.MethodGet, "/integrations/users/nobody-here", nil)
	require.Equal(t, http.StatusNotFound, rest.StatusCode)
	gql := env.Consumer("", http.MethodPost, "/graphql", []byte(`{"query":"{ me { id } }"}`))
	ok := env.Partner("acme", http.MethodGet, "/integrations/program", nil)
	env.App.Log.Error("something failed in a job")

	lines := map[string]map[string]any{}
	var bare map[string]any
	sc := bufio.NewScanner(strings.NewReader(env.Logs.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) != nil {
			continue
		}
		if id, _ := line["request_id"].(string); line["msg"] == "request" {
			lines[id] = line
		}
		if line["msg"] == "something failed in a job" {
			bare = line
		}
	}
	for res, code := range map[*apptest.Response]string{rest: "USER_NOT_FOUND", gql: "UNAUTHENTICATED"} {
		id := res.Header.Get("X-Request-Id")
		require.NotEmpty(t, id)
		require.Contains(t, lines, id)
		require.Equal(t, code, lines[id]["code"], "access line of %s", id)
	}
	require.NotContains(t, lines[ok.Header.Get("X-Request-Id")], "code", "a success has no code")
	require.Equal(t, "INTERNAL", bare["code"])
	require.Equal(t, "-", bare["request_id"])
}
