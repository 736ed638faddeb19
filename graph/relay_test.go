package graph_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/perkshq/perks/graph"
)

// TestConnectionsFollowRelaySpec checks the schema against the Relay cursor
// connections specification: every *Connection type has edges of an *Edge
// type (cursor: String!, node) and pageInfo: PageInfo!, PageInfo has the
// four fields, and every field returning a connection takes first/after.
// The Relay compiler refuses connections without hasPreviousPage and
// startCursor.
func TestConnectionsFollowRelaySpec(t *testing.T) {
	t.Parallel()
	schema := graph.NewExecutableSchema(graph.Config{Resolvers: &graph.Resolver{}}).Schema()

	pi := schema.Types["PageInfo"]
	require.NotNil(t, pi)
	for name, typ := range map[string]string{"hasNextPage": "Boolean!", "hasPreviousPage": "Boolean!", "startCursor": "String", "endCursor": "String"} {
		f := pi.Fields.ForName(name)
		require.NotNil(t, f, "PageInfo.%s", name)
		require.Equal(t, typ, f.Type.String(), "PageInfo.%s", name)
	}

	connections := 0
	for name, def := range schema.Types {
		if !strings.HasSuffix(name, "Connection") || def.Kind != ast.Object {
			continue
		}
		connections++
		edges := def.Fields.ForName("edges")
		require.NotNil(t, edges, "%s.edges", name)
		edgeName := strings.TrimSuffix(name, "Connection") + "Edge"
		require.Equal(t, "["+edgeName+"!]!", edges.Type.String(), "%s.edges", name)
		require.Equal(t, "PageInfo!", def.Fields.ForName("pageInfo").Type.String(), "%s.pageInfo", name)
		edge := schema.Types[edgeName]
		require.Equal(t, "String!", edge.Fields.ForName("cursor").Type.String(), "%s.cursor", edgeName)
		require.NotNil(t, edge.Fields.ForName("node"), "%s.node", edgeName)
	}
	require.Equal(t, 3, connections, "history, catalog and vouchers")

	fields := 0
	for _, def := range schema.Types {
		for _, f := range def.Fields {
			if !strings.HasSuffix(f.Type.Name(), "Connection") {
				continue
			}
			fields++
			require.Equal(t, "Int", f.Arguments.ForName("first").Type.String(), "%s.%s(first:)", def.Name, f.Name)
			require.Equal(t, "String", f.Arguments.ForName("after").Type.String(), "%s.%s(after:)", def.Name, f.Name)
		}
	}
	require.Equal(t, 3, fields)
}

// TestPageInfoCursors pages through every connection two items at a time:
// startCursor is the first edge's cursor and endCursor the last's,
// hasPreviousPage is false on the first page and true once after is given,
// and an empty page has null cursors.
func TestPageInfoCursors(t *testing.T) {
	t.Parallel()
	f := setupCatalog(t)
	env := f.env
	env.FundedUser("acme", "pager", "SG", 1000)
	tok := env.Token("acme", "pager", nil)
	for i, sku := range []string{"coffee", "ebook", "store-10-off"} {
		res := env.Claim(tok, f.gifts[sku], "k"+string(rune('a'+i)))
		require.Empty(t, res.Errors, "%+v", res.Errors)
	}
	type page struct {
		Edges    []struct{ Cursor string }
		PageInfo struct {
			HasNextPage, HasPreviousPage bool
			StartCursor, EndCursor       *string
		}
	}
	for _, field := range []string{"history", "catalog", "vouchers"} {
		t.Run(field, func(t *testing.T) {
			var after any
			pages := 0
			for {
				res := env.GraphQL(tok, `query($after: String) { c: `+field+`(first: 2, after: $after) {
					edges { cursor } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }`, map[string]any{"after": after})
				require.Empty(t, res.Errors, "%+v", res.Errors)
				var out struct{ C page }
				require.NoError(t, json.Unmarshal(res.Data, &out))
				p := out.C
				require.NotEmpty(t, p.Edges, "page %d", pages)
				require.Equal(t, p.Edges[0].Cursor, *p.PageInfo.StartCursor)
				require.Equal(t, p.Edges[len(p.Edges)-1].Cursor, *p.PageInfo.EndCursor)
				require.Equal(t, pages > 0, p.PageInfo.HasPreviousPage, "page %d", pages)
				pages++
				if !p.PageInfo.HasNextPage {
					break
				}
				after = *p.PageInfo.EndCursor
			}
			require.GreaterOrEqual(t, pages, 2)
		})
	}

	// An empty page: no cursors, and no previous page without after.
	res := env.GraphQL(tok, `{ vouchers(status: REDEEMED) { edges { cursor } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }`, nil)
	require.Empty(t, res.Errors, "%+v", res.Errors)
	require.JSONEq(t, `{"vouchers":{"edges":[],"pageInfo":{"hasNextPage":false,"hasPreviousPage":false,"startCursor":null,"endCursor":null}}}`, string(res.Data))
}
