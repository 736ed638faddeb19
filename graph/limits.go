package graph

import (
	"context"
	"fmt"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/lexer"
	"github.com/vektah/gqlparser/v2/parser"

	"github.com/perkshq/perks/internal/apperr"
)

// Limits bound what one GraphQL request may cost. Every limit except the
// complexity is checked on the document text and its syntax tree BEFORE
// gqlparser validates it: validation itself is the expensive part for
// hostile documents (OverlappingFieldsCanBeMerged compares every pair of
// fields that share a response name, about 2 µs a pair, so 4,000 copies of
// `me { id }` cost seconds), and gqlgen expands fragment spreads without
// memoising them in its complexity walk and at execution, so a 900-byte
// document of fragments that each spread the previous one twice expands to
// 2^24 fields. The checks below walk every fragment once (memoised), so
// they are linear in the document and never expand it.
//
// docs/graphql.md lists the defaults, the codes and the measured costs.
type Limits struct {
	// MaxBytes bounds the query text (comments included).
	MaxBytes int
	// MaxTokens bounds the lexical tokens of the query (comments excluded).
	MaxTokens int
	// MaxAliases bounds the aliased fields written in the document.
	MaxAliases int
	// MaxFields bounds the fields of the document with every fragment
	// spread counted as the fields it stands for (summed over operations
	// and fragment definitions, all of which validation visits).
	MaxFields int
	// MaxRepeats bounds the pairs of fields that share a response name in
	// one place once fragments are expanded: n selections of the same name
	// in one selection set (directly, through fragments or under repeated
	// parents) count n(n-1)/2. It is what validation's overlap check pays
	// for; an ordinary query with fragments repeats `id` a few times.
	MaxRepeats int
	// MaxDepth bounds the nesting of the operation; MaxIntrospectionDepth
	// bounds the nesting of __schema and __type when introspection is on
	// (their subtrees are not counted against MaxDepth, so the standard
	// introspection query of graphql-js, 15 levels, works in development
	// without lifting the limit for real queries).
	MaxDepth              int
	MaxIntrospectionDepth int
	// MaxComplexity bounds the operation's cost (see complexity.go).
	MaxComplexity int
	// MaxMutationFields bounds the root fields of a mutation (each one is a
	// separate write; 200 aliased triggerAction earned 200 times).
	MaxMutationFields int
	// Introspection allows __schema and __type (development only).
	Introspection bool
}

// DefaultLimits are the limits used where Options leave one at zero.
var DefaultLimits = Limits{
	MaxBytes:              16 << 10,
	MaxTokens:             3000,
	MaxAliases:            100,
	MaxFields:             1000,
	MaxRepeats:            2000,
	MaxDepth:              12,
	MaxIntrospectionDepth: 20,
	MaxComplexity:         1000,
	MaxMutationFields:     10,
}

func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.MaxBytes, DefaultLimits.MaxBytes)
	def(&l.MaxTokens, DefaultLimits.MaxTokens)
	def(&l.MaxAliases, DefaultLimits.MaxAliases)
	def(&l.MaxFields, DefaultLimits.MaxFields)
	def(&l.MaxRepeats, DefaultLimits.MaxRepeats)
	def(&l.MaxDepth, DefaultLimits.MaxDepth)
	def(&l.MaxIntrospectionDepth, DefaultLimits.MaxIntrospectionDepth)
	def(&l.MaxComplexity, DefaultLimits.MaxComplexity)
	def(&l.MaxMutationFields, DefaultLimits.MaxMutationFields)
	return l
}

// The limit codes refuse the request itself (HTTP 422, or 400 for
// application/graphql-response+json), like parse and validation errors;
// they are not errors of a resolver.
func init() {
	for _, c := range []apperr.Code{apperr.CodeQueryTooLarge, apperr.CodeDepthLimitExceeded, apperr.CodeComplexityLimitExceeded, apperr.CodeMutationLimitExceeded} {
		errcode.RegisterErrorType(string(c), errcode.KindProtocol)
	}
}

// limitError is the refusal of a document over a limit: extensions carry
// the code, which limit (`limit`), its value (`max`) and, when it was
// measured exactly, the document's value (`actual`).
func limitError(code apperr.Code, limit string, max int, actual int64, format string, args ...any) *gqlerror.Error {
	ext := map[string]any{"code": string(code), "limit": limit, "max": max}
	if actual >= 0 {
		ext["actual"] = actual
	}
	return &gqlerror.Error{Message: fmt.Sprintf(format, args...), Extensions: ext}
}

// documentGuard is the gqlgen extension enforcing Limits: the size checks
// run as an OperationParameterMutator (before gqlgen parses and validates),
// the complexity as an OperationContextMutator (after validation, when
// argument values and variables are known).
type documentGuard struct {
	limits Limits
	// shapes remembers the verdict on documents already measured, keyed by
	// the query text (the hot path sends the same few documents).
	shapes *lru.LRU[*shape]
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationParameterMutator
	graphql.OperationContextMutator
} = (*documentGuard)(nil)

func newDocumentGuard(l Limits) *documentGuard {
	return &documentGuard{limits: l.withDefaults(), shapes: lru.New[*shape](1000)}
}

func (*documentGuard) ExtensionName() string                   { return "DocumentGuard" }
func (*documentGuard) Validate(graphql.ExecutableSchema) error { return nil }

// MutateOperationParameters measures the document before gqlgen parses and
// validates it. Documents that do not lex or parse are left to gqlgen, which
// reports the syntax error (its cost is bounded by the token count checked
// here first).
func (g *documentGuard) MutateOperationParameters(ctx context.Context, p *graphql.RawParams) *gqlerror.Error {
	s, ok := g.shapes.Get(ctx, p.Query)
	if !ok {
		var err *gqlerror.Error
		if s, err = g.measure(p.Query); err != nil {
			return err
		}
		if s == nil {
			return nil // syntax error: gqlgen reports it
		}
		g.shapes.Add(ctx, p.Query, s)
	}
	op, ok := s.ops[p.OperationName]
	if !ok {
		return nil // unknown or ambiguous operation: gqlgen reports it
	}
	l := g.limits
	if op.depth > l.MaxDepth {
		return limitError(apperr.CodeDepthLimitExceeded, "depth", l.MaxDepth, int64(op.depth),
			"operation is nested %d levels deep; the limit is %d", op.depth, l.MaxDepth)
	}
	if l.Introspection && op.introDepth > l.MaxIntrospectionDepth {
		return limitError(apperr.CodeDepthLimitExceeded, "introspectionDepth", l.MaxIntrospectionDepth, int64(op.introDepth),
			"introspection is nested %d levels deep; the limit is %d", op.introDepth, l.MaxIntrospectionDepth)
	}
	if op.mutation && op.rootFields > int64(l.MaxMutationFields) {
		return limitError(apperr.CodeMutationLimitExceeded, "mutationFields", l.MaxMutationFields, op.rootFields,
			"the mutation has %d root fields; the limit is %d per request (send the others in further requests)", op.rootFields, l.MaxMutationFields)
	}
	return nil
}

// shape is what measure learnt about a document that is within the
// document-wide limits: per operation name ("" for the only operation), its
// depth and root fields.
type shape struct {
	ops map[string]opShape
}

type opShape struct {
	depth, introDepth int
	rootFields        int64
	mutation          bool
}

// measure checks the document-wide limits: bytes, then tokens and aliases in
// one lexer pass, then (on the parsed tree, walked once per fragment) the
// expanded field count and the repeated response names. It returns nil, nil
// for a document with a syntax error.
func (g *documentGuard) measure(query string) (*shape, *gqlerror.Error) {
	l := g.limits
	if len(query) > l.MaxBytes {
		return nil, limitError(apperr.CodeQueryTooLarge, "bytes", l.MaxBytes, int64(len(query)),
			"the query is %d bytes; the limit is %d", len(query), l.MaxBytes)
	}
	tokens, aliases, ok := lex(query, l.MaxTokens)
	if tokens > l.MaxTokens {
		return nil, limitError(apperr.CodeQueryTooLarge, "tokens", l.MaxTokens, -1,
			"the query has more than %d tokens", l.MaxTokens)
	}
	if !ok {
		return nil, nil
	}
	if aliases > l.MaxAliases {
		return nil, limitError(apperr.CodeQueryTooLarge, "aliases", l.MaxAliases, int64(aliases),
			"the query has %d aliases; the limit is %d", aliases, l.MaxAliases)
	}
	doc, err := parser.ParseQuery(&ast.Source{Input: query})
	if err != nil {
		return nil, nil
	}

	w := newWalker(doc, l.Introspection)
	ops := make([]setStats, len(doc.Operations))
	var fields int64
	for i, op := range doc.Operations {
		ops[i] = w.set(op.SelectionSet)
		fields = satAdd(fields, ops[i].fields)
	}
	for _, f := range doc.Fragments {
		fields = satAdd(fields, w.fragment(f.Name).fields)
	}
	if fields == maxCount { // saturated: it must never reach the expansion below
		return nil, limitError(apperr.CodeQueryTooLarge, "fields", l.MaxFields, -1,
			"the query selects more than a billion fields once its fragments are expanded; the limit is %d", l.MaxFields)
	}
	if fields > int64(l.MaxFields) {
		return nil, limitError(apperr.CodeQueryTooLarge, "fields", l.MaxFields, fields,
			"the query selects %d fields once its fragments are expanded; the limit is %d", fields, l.MaxFields)
	}
	// Within MaxFields the expansion is small, so merging it is cheap.
	var repeats int64
	for _, op := range doc.Operations {
		repeats += w.repeats(op.SelectionSet)
	}
	for _, f := range doc.Fragments {
		repeats += w.repeats(f.SelectionSet)
	}
	if repeats > int64(l.MaxRepeats) {
		return nil, limitError(apperr.CodeQueryTooLarge, "repeatedFields", l.MaxRepeats, repeats,
			"the query selects the same response names in the same places too often (%d pairs once fragments are expanded; the limit is %d): select each field once per place", repeats, l.MaxRepeats)
	}

	s := &shape{ops: make(map[string]opShape, len(doc.Operations)+1)}
	for i, op := range doc.Operations {
		st := ops[i]
		s.ops[op.Name] = opShape{depth: st.depth, introDepth: st.introDepth, rootFields: st.top, mutation: op.Operation == ast.Mutation}
	}
	if len(doc.Operations) == 1 {
		s.ops[""] = s.ops[doc.Operations[0].Name]
	}
	return s, nil
}

// lex counts the tokens of query (comments excluded), stopping after
// maxTokens+1, and the aliases: a name followed by a colon outside
// parentheses (inside them, name-colon pairs are arguments, variable
// definitions or object fields). ok is false when the text does not lex.
func lex(query string, maxTokens int) (tokens, aliases int, ok bool) {
	lx := lexer.New(&ast.Source{Input: query})
	parens := 0
	prevName := false
	for {
		tok, err := lx.ReadToken()
		if err != nil {
			return tokens, aliases, false
		}
		switch tok.Kind {
		case lexer.EOF:
			return tokens, aliases, true
		case lexer.Comment:
			continue
		case lexer.ParenL:
			parens++
		case lexer.ParenR:
			parens--
		case lexer.Colon:
			if prevName && parens == 0 {
				aliases++
			}
		}
		prevName = tok.Kind == lexer.Name
		tokens++
		if tokens > maxTokens {
			return tokens, aliases, true
		}
	}
}

// maxCount saturates the expanded counts: 2^24 expansions must not wrap.
const maxCount = int64(1) << 30

func satAdd(a, b int64) int64 {
	if a+b > maxCount {
		return maxCount
	}
	return a + b
}

// setStats describes a selection set with its fragments expanded.
type setStats struct {
	// fields is the number of fields it stands for.
	fields int64
	// top is the number of fields at its own level (root fields, for an
	// operation).
	top int64
	// depth is the nesting of its fields (a leaf field is 1); introDepth the
	// nesting of __schema/__type fields when introspection is on, which do
	// not count in depth.
	depth, introDepth int
}

// walker measures selection sets, computing each fragment once: a fragment
// spread costs a map lookup however often it is spread. Fragment cycles
// (which validation refuses) count as empty.
type walker struct {
	frags         map[string]*ast.FragmentDefinition
	memo          map[string]setStats
	busy          map[string]bool
	introspection bool
}

func newWalker(doc *ast.QueryDocument, introspection bool) *walker {
	w := &walker{
		frags:         make(map[string]*ast.FragmentDefinition, len(doc.Fragments)),
		memo:          make(map[string]setStats, len(doc.Fragments)),
		busy:          map[string]bool{},
		introspection: introspection,
	}
	for _, f := range doc.Fragments {
		if _, dup := w.frags[f.Name]; !dup { // duplicates are a validation error
			w.frags[f.Name] = f
		}
	}
	return w
}

func (w *walker) fragment(name string) setStats {
	if st, ok := w.memo[name]; ok {
		return st
	}
	f := w.frags[name]
	if f == nil || w.busy[name] {
		return setStats{}
	}
	w.busy[name] = true
	st := w.set(f.SelectionSet)
	delete(w.busy, name)
	w.memo[name] = st
	return st
}

func (w *walker) set(set ast.SelectionSet) setStats {
	var st setStats
	for _, sel := range set {
		var sub setStats
		switch s := sel.(type) {
		case *ast.Field:
			child := w.set(s.SelectionSet)
			d := 1 + max(child.depth, child.introDepth)
			st.fields = satAdd(st.fields, satAdd(1, child.fields))
			st.top = satAdd(st.top, 1)
			if w.introspection && (s.Name == "__schema" || s.Name == "__type") {
				st.introDepth = max(st.introDepth, d)
			} else {
				st.depth = max(st.depth, d)
			}
			continue
		case *ast.InlineFragment:
			sub = w.set(s.SelectionSet)
		case *ast.FragmentSpread:
			sub = w.fragment(s.Name)
		}
		st.fields = satAdd(st.fields, sub.fields)
		st.top = satAdd(st.top, sub.top)
		st.depth = max(st.depth, sub.depth)
		st.introDepth = max(st.introDepth, sub.introDepth)
	}
	return st
}

// repeats expands set into a tree of response names, counting how many
// fields and how many distinct fragments merged into each node, and returns
// the sum of n(n-1)/2 over both counts of every node: what validation
// compares, or more (it compares the fields of two spreads of one fragment
// once; they count here for each spread). Call it only on documents within
// MaxFields (it expands fragments).
func (w *walker) repeats(set ast.SelectionSet) int64 {
	root := &mergeNode{}
	w.merge(root, set, map[string]bool{})
	return root.pairs()
}

type mergeNode struct {
	// n counts the fields merged into the node, spreads the distinct
	// fragments spread into it (validation compares every pair of
	// fragments spread in one place, as it does fields, but each pair of
	// names once).
	n        int64
	spreads  map[string]bool
	children map[string]*mergeNode
}

func (w *walker) merge(into *mergeNode, set ast.SelectionSet, busy map[string]bool) {
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			if into.children == nil {
				into.children = map[string]*mergeNode{}
			}
			c := into.children[s.Alias]
			if c == nil {
				c = &mergeNode{}
				into.children[s.Alias] = c
			}
			c.n++
			w.merge(c, s.SelectionSet, busy)
		case *ast.InlineFragment:
			w.merge(into, s.SelectionSet, busy)
		case *ast.FragmentSpread:
			if into.spreads == nil {
				into.spreads = map[string]bool{}
			}
			into.spreads[s.Name] = true
			f := w.frags[s.Name]
			if f == nil || busy[s.Name] {
				continue
			}
			busy[s.Name] = true
			w.merge(into, f.SelectionSet, busy)
			delete(busy, s.Name)
		}
	}
}

func (m *mergeNode) pairs() int64 {
	k := int64(len(m.spreads))
	p := m.n*(m.n-1)/2 + k*(k-1)/2
	for _, c := range m.children {
		p += c.pairs()
	}
	return p
}
