package graph

import (
	"context"
	"encoding/json"
	"math"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/perkshq/perks/internal/apperr"
)

// MutateOperationContext refuses a validated operation whose complexity is
// over the limit, before any resolver runs.
func (g *documentGuard) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil {
		return nil
	}
	c := complexity(oc.Operation, oc.Variables)
	if c > int64(g.limits.MaxComplexity) {
		return limitError(apperr.CodeComplexityLimitExceeded, "complexity", g.limits.MaxComplexity, c,
			"operation has complexity %d; the limit is %d (ask for smaller pages or fewer lists)", c, g.limits.MaxComplexity)
	}
	return nil
}

// complexity prices a validated operation by the objects it can return:
//
//   - every object costs 1 plus its selection; a scalar or enum field
//     costs nothing below the root (how many fields a document has is
//     bounded by Limits before validation; this prices what the resolvers
//     fetch), and a root field costs at least 1;
//   - a list of objects costs its page size times (1 + its selection): the
//     page is the field's `first` or `last` argument (defaults applied, so
//     leaderboard counts 10 when `first` is omitted), or `around` (up to that
//     many entries on each side), or, for the `edges` of a connection, the
//     page size of the connection (catalog(first: 100) → edges); lists
//     without one (merchants, ads) count as one item;
//   - introspection fields (__schema, __type, __typename) cost nothing:
//     they read the in-memory schema, and are off in production.
//
// So catalog(first: 20) { edges { node { id title merchants { name } } } }
// costs 1 + 20 × (1 + 1 + 1) = 61, and 140 aliased catalog(first: 100)
// cost more than 28,000. Fragments are priced once per (fragment, page
// size inherited from the parent): spreading one a million times costs a
// map lookup each time, never an expansion.
func complexity(op *ast.OperationDefinition, vars map[string]any) int64 {
	c := &pricer{vars: vars, memo: map[fragKey]int64{}, busy: map[fragKey]bool{}}
	return c.set(op.SelectionSet, 0, true)
}

type fragKey struct {
	name string
	page int64
	root bool
}

type pricer struct {
	vars map[string]any
	memo map[fragKey]int64
	busy map[fragKey]bool
}

// set prices a selection set; page is the page size its parent connection
// passes to list fields (0 for none).
func (c *pricer) set(set ast.SelectionSet, page int64, root bool) int64 {
	var total int64
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			total = satAdd(total, c.field(s, page, root))
		case *ast.InlineFragment:
			total = satAdd(total, c.set(s.SelectionSet, page, root))
		case *ast.FragmentSpread:
			if s.Definition == nil {
				continue
			}
			k := fragKey{s.Name, page, root}
			v, ok := c.memo[k]
			if !ok {
				if c.busy[k] {
					continue // cycles are refused by validation
				}
				c.busy[k] = true
				v = c.set(s.Definition.SelectionSet, page, root)
				delete(c.busy, k)
				c.memo[k] = v
			}
			total = satAdd(total, v)
		}
	}
	return total
}

func (c *pricer) field(f *ast.Field, inherited int64, root bool) int64 {
	if strings.HasPrefix(f.Name, "__") || f.Definition == nil {
		return 0
	}
	if len(f.SelectionSet) == 0 { // scalar or enum
		if root {
			return 1
		}
		return 0
	}
	own := c.pageSize(f)
	if f.Definition.Type.Elem != nil { // a list of objects
		n := own
		if n == 0 {
			n = inherited
		}
		if n == 0 {
			n = 1
		}
		return satMul(n, satAdd(1, c.set(f.SelectionSet, 0, false)))
	}
	return satAdd(1, c.set(f.SelectionSet, own, false))
}

// pageSize is the field's `first`, `last` or `around` argument (defaults
// applied), 0 when it has none. `around: n` returns up to n entries on each
// side, so it counts n per list.
func (c *pricer) pageSize(f *ast.Field) int64 {
	var n int64
	var args map[string]any
	for _, a := range f.Definition.Arguments {
		switch a.Name {
		case "first", "last", "around":
		default:
			continue
		}
		if args == nil {
			args = f.ArgumentMap(c.vars)
		}
		n = max(n, toInt(args[a.Name]))
	}
	return n
}

func toInt(v any) int64 {
	var n int64
	switch v := v.(type) {
	case int:
		n = int64(v)
	case int32:
		n = int64(v)
	case int64:
		n = v
	case float64:
		n = int64(min(v, maxPageSize))
	case json.Number:
		if i, err := v.Int64(); err == nil {
			n = i
		} else {
			n = maxPageSize
		}
	default:
		return 0
	}
	// Page sizes outside 1..maxPageSize are refused by the resolver (with
	// INVALID_FIELD, which says what the range is); count them in range.
	return min(max(n, 1), maxPageSize)
}

// maxPageSize is the largest page any list resolver serves: pageSize(first,
// _, 100) for connections and leaderboard, ranking.MaxAround for around.
const maxPageSize = 100

func satMul(a, b int64) int64 {
	if a == 0 || b == 0 {
		return 0
	}
	if a > math.MaxInt64/b || a*b > maxCount {
		return maxCount
	}
	return a * b
}
