package graph

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/stretchr/testify/require"
)

// TestMarshalSliceInOrder: the sequential list marshaller gives each
// element its index, in order, and treats a panic as
// MarshalSliceConcurrently does: that element is null and an error names
// its path; with omitPanicHandler the panic goes on.
func TestMarshalSliceInOrder(t *testing.T) {
	t.Parallel()

	setup := func() context.Context {
		ctx := graphql.WithResponseContext(context.Background(), graphql.DefaultErrorPresenter, graphql.DefaultRecover)
		return graphql.WithFieldContext(ctx, &graphql.FieldContext{Field: graphql.CollectedField{}})
	}
	element := func(ctx context.Context, i int) graphql.Marshaler {
		fc := graphql.GetFieldContext(ctx)
		if *fc.Index != i {
			panic("wrong index")
		}
		if i == 2 {
			panic("boom")
		}
		return graphql.MarshalInt(i)
	}
	write := func(a graphql.Array) string {
		var b bytes.Buffer
		a.MarshalGQL(&b)
		return b.String()
	}

	ctx := setup()
	require.Equal(t, "[0,1,null,3]", write(marshalSliceInOrder(ctx, 4, 0, false, element)))
	errs := graphql.GetErrors(ctx)
	require.Len(t, errs, 1)
	require.Equal(t, "[2]", errs[0].Path.String())

	require.Equal(t, "[]", write(marshalSliceInOrder(setup(), 0, 0, false, element)))
	require.Panics(t, func() { marshalSliceInOrder(setup(), 4, 0, true, element) })
}

// TestPlainListsMarshalInOrder pins cmd/graphgen's choice in the
// generated code: lists of plain objects (the catalog page's gifts and
// their merchants) marshal in one goroutine; lists whose elements have
// resolvers (vouchers, ledger entries, ads) keep a goroutine per element,
// so that their loaders batch across elements.
func TestPlainListsMarshalInOrder(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("generated.go")
	require.NoError(t, err)
	calls := func(list string) string {
		re := regexp.MustCompile(`(?s)func \(ec \*executionContext\) marshalN` + list + `2ᚕ[^(]*\(.*?\n}\n`)
		body := re.Find(src)
		require.NotNil(t, body, list)
		return regexp.MustCompile(`graphql\.MarshalSliceConcurrently|marshalSliceInOrder`).FindString(string(body))
	}
	for list, want := range map[string]string{
		"GiftEdge":        "marshalSliceInOrder",
		"Merchant":        "marshalSliceInOrder",
		"VoucherEdge":     "graphql.MarshalSliceConcurrently",
		"LedgerEntryEdge": "graphql.MarshalSliceConcurrently",
		"Ad":              "graphql.MarshalSliceConcurrently",
	} {
		require.Equal(t, want, calls(list), list)
	}
}
