package graph

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/stretchr/testify/require"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// TestWriteResponseIsMarshal: writeResponse writes what json.Marshal of
// the response writes, byte for byte, whether it copies Data as it is or
// lets Marshal compact and escape it.
func TestWriteResponseIsMarshal(t *testing.T) {
	t.Parallel()
	yes := true
	cases := []struct {
		name string
		resp graphql.Response
		asIs bool
	}{
		{"plain", graphql.Response{Data: json.RawMessage(`{"catalog":{"edges":[{"node":{"title":"Café offert","n":1}}]}}`)}, true},
		{"escaped quote and backslash in a string", graphql.Response{Data: json.RawMessage(`{"a":"x\" \\ {\"y\" ","b":[1,2]}`)}, true},
		{"spaces outside strings", graphql.Response{Data: json.RawMessage("{ \"a\" : [1, 2],\n\t\"b\":\r\"c d\" }")}, false},
		{"html characters", graphql.Response{Data: json.RawMessage(`{"a":"<b>&amp;</b>"}`)}, false},
		{"line and paragraph separators", graphql.Response{Data: json.RawMessage("{\"a\":\"x\u2028y\u2029z\"}")}, false},
		{"another character with the same first byte", graphql.Response{Data: json.RawMessage(`{"a":"€"}`)}, false},
		{"no data", graphql.Response{Errors: gqlerror.List{{Message: "bad <thing>", Extensions: map[string]any{"code": "X"}}}}, false},
		{"every member", graphql.Response{
			Errors: gqlerror.List{{Message: "m", Path: ast.Path{ast.PathName("a"), ast.PathIndex(1)}, Extensions: map[string]any{"code": "X", "b": 2}}},
			Data:   json.RawMessage(`{"a":null}`), Label: "l<", Path: ast.Path{ast.PathName("p")}, HasNext: &yes,
			Extensions: map[string]any{"z": 1, "a": "<x>"},
		}, true},
		{"empty errors and extensions", graphql.Response{Errors: gqlerror.List{}, Data: json.RawMessage(`{}`), Extensions: map[string]any{}}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, c.asIs, len(c.resp.Data) > 0 && compactAsIs(c.resp.Data))
			want, err := json.Marshal(&c.resp)
			require.NoError(t, err)
			var got bytes.Buffer
			writeResponse(&got, &c.resp)
			require.Equal(t, string(want), got.String())
		})
	}
}
