package graph

import (
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
	"github.com/vektah/gqlparser/v2/validator"
	"github.com/vektah/gqlparser/v2/validator/rules"
)

// TestComplexity prices documents by the objects they can return, with
// list sizes from first/last/around (and their defaults) and fragments
// priced once.
func TestComplexity(t *testing.T) {
	t.Parallel()
	schema := NewExecutableSchema(Config{}).Schema()
	for _, tc := range []struct {
		name  string
		query string
		vars  map[string]any
		want  int64
	}{
		{"scalars below the root are free", `{ me { id email partner { name } } }`, nil, 2},
		{"a root scalar costs 1", `mutation { logout }`, nil, 1},
		{"introspection is free", `{ __typename __type(name: "User") { name fields { name } } }`, nil, 0},
		{"connection: page × (edge + node)", `{ catalog(first: 20) { edges { node { id title merchants { name } } } pageInfo { hasNextPage } } }`, nil, 1 + 20*(1+1+1) + 1},
		{"the page size's default", `{ catalog { edges { node { id } } } }`, nil, 1 + 20*2},
		{"page size from a variable", `query($n: Int) { catalog(first: $n) { edges { node { id } } } }`, map[string]any{"n": 100}, 1 + 100*2},
		{"a list with first", `{ leaderboard(first: 50) { rank } }`, nil, 50},
		{"a list's default first", `{ leaderboard { rank } }`, nil, 10},
		{"around counts on each side", `{ ranking(around: 50) { rank above { rank } below { rank } } }`, nil, 1 + 50 + 50},
		{"nested objects", `{ history(first: 100) { edges { node { id voucher { gift { merchants { id } } } } } } }`, nil, 1 + 100*(1+1+1+1+1)},
		{"the points lifecycle: expiringPoints is one read", `{ me { balance pendingPoints expiringPoints { points expiresAt } } }`, nil, 1 + 1},
		{"the webview's catalog operation: me with its tier block, gifts with minTier", `{ me { balance pendingPoints expiringPoints { points expiresAt } tier { code name benefits threshold } nextTier { code name pointsToGo threshold } }
		  catalog(first: 20) { edges { node { id sku title description imageUrl costPoints stock perUserLimit redemption claimedByMe canClaim reason minTier { name } merchants { name } } } pageInfo { hasNextPage endCursor } } }`, nil, (1 + 1 + 1 + 1) + (1 + 20*(1+1+1+1) + 1)},
		{"history's why-fields are an object each per entry", `{ history(first: 100) { edges { node { entryKind origin { id } lot { expiresAt } } } } }`, nil, 1 + 100*(1+1+1+1)},
		{"unpaged lists count one item", `{ ads { id action { code } } }`, nil, 2},
		{"140 aliased pages", "{" + repeat(140, " c%d: catalog(first: 100) { edges { node { id } } }") + " }", nil, 140 * 201},
		{"fragments inherit the page size", `{ catalog(first: 100) { ...C } } fragment C on GiftConnection { edges { node { id } } }`, nil, 1 + 100*2},
		{"a fragment under two page sizes", `{ a: catalog(first: 100) { ...C } b: catalog(first: 5) { ...C } } fragment C on GiftConnection { edges { ...E } } fragment E on GiftEdge { node { id } }`, nil, (1 + 100*2) + (1 + 5*2)},
		{"a fragment bomb is priced, never expanded", `{ me { ...F20 } } fragment F0 on User { partner { id } } ` + repeat(20, "fragment F%n on User { ...F%d ...F%d } "), nil, 1 + 1<<20},
		{"pages over 100 count 100 (the resolver refuses them)", `{ catalog(first: 2000000000) { edges { node { id merchants { id } } } } }`, nil, 1 + 100*3},
		{"a bomb of pages saturates", `{ catalog(first: 100) { edges { node { ...G30 } } } } fragment G0 on Gift { merchants { id } } ` + repeat(30, "fragment G%n on Gift { ...G%d ...G%d } "), nil, maxCount},
	} {
		doc, errs := gqlparser.LoadQueryWithRules(schema, tc.query, rules.NewDefaultRules())
		require.Empty(t, errs, tc.name)
		op := doc.Operations[0]
		vars, err := validator.VariableValues(schema, op, tc.vars)
		require.NoError(t, err, tc.name)
		require.Equal(t, tc.want, complexity(op, vars), tc.name)
	}
}

// TestWalkerMemoisesFragments: the limits' walk over a fragment bomb of
// 60 levels (2^60 fields) takes one visit per fragment and saturates.
func TestWalkerMemoisesFragments(t *testing.T) {
	t.Parallel()
	q := FragmentBomb(60)
	g := newDocumentGuard(Limits{MaxBytes: 1 << 20, MaxFields: 1 << 40})
	_, err := g.measure(q)
	require.NotNil(t, err)
	require.Equal(t, "fields", err.Extensions["limit"])
	require.Contains(t, err.Message, "more than a billion")

	doc, gerr := parser.ParseQuery(&ast.Source{Input: q})
	require.NoError(t, gerr)
	w := newWalker(doc, false)
	st := w.set(doc.Operations[0].SelectionSet)
	require.Equal(t, maxCount, st.fields)
	require.Equal(t, 2, st.depth) // me { id }: fragments add no level
	require.Len(t, w.memo, 61)
}
