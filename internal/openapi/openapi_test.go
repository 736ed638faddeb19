package openapi_test

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/event"
	"github.com/perkshq/perks/internal/openapi"
)

// TestEveryRouteIsDocumented: each REST route the router serves is in the
// document, and the document describes no route that does not exist.
func TestEveryRouteIsDocumented(t *testing.T) {
	t.Parallel()
	env := apptest.New(t)
	var doc struct {
		Paths map[string]map[string]json.RawMessage
	}
	require.NoError(t, json.Unmarshal(openapi.JSON(), &doc))
	var documented []string
	for path, ops := range doc.Paths {
		for m := range ops {
			if m != "parameters" {
				documented = append(documented, strings.ToUpper(m)+" "+path)
			}
		}
	}
	sort.Strings(documented)
	var served []string
	for _, r := range env.App.Routes {
		method, path, _ := strings.Cut(r, " ")
		if strings.HasPrefix(path, "/integrations/") || strings.HasPrefix(path, "/merchant/") || strings.HasPrefix(path, "/auth/") || path == "/me" {
			served = append(served, method+" "+path)
		}
	}
	require.Equal(t, served, documented)

	req, _ := http.NewRequest(http.MethodGet, env.Server.URL+"/openapi.json", nil)
	res := env.Do(req)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "application/json", res.Header.Get("Content-Type"))
	require.Contains(t, string(res.Body), `"openapi":"3.1.0"`)
	apptest.ContractRouter(t) // the document loads and validates
}

// TestEventTypesAreDocumented: the EventType enum that webhook endpoint
// requests are validated against lists exactly event.Types, so an endpoint
// can subscribe to every event Perks sends (a new type added to
// event.Types without the document would be refused).
func TestEventTypesAreDocumented(t *testing.T) {
	t.Parallel()
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Enum []string `json:"enum"`
			} `json:"schemas"`
		} `json:"components"`
	}
	require.NoError(t, json.Unmarshal(openapi.JSON(), &doc))
	require.ElementsMatch(t, event.Types, doc.Components.Schemas["EventType"].Enum)
}
