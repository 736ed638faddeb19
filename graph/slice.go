package graph

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
)

// marshalSliceInOrder is graphql.MarshalSliceConcurrently without the
// goroutines: each element gets the same field context (its index) and,
// unless omitPanicHandler, the same recovery (a panic nulls the element and
// adds an error). cmd/graphgen points the generated marshal functions of
// lists whose elements have only plain fields at it; there, concurrency
// only cost a goroutine and a stack per element. workerLimit bounds
// goroutines, of which there are none.
func marshalSliceInOrder(ctx context.Context, length int, _ int64, omitPanicHandler bool, marshal func(ctx context.Context, i int) graphql.Marshaler) graphql.Array {
	ret := make(graphql.Array, length)
	for i := range length {
		childCtx := graphql.WithFieldContext(ctx, &graphql.FieldContext{Index: &i})
		if omitPanicHandler {
			ret[i] = marshal(childCtx, i)
			continue
		}
		func() {
			defer func() {
				if r := recover(); r != nil {
					graphql.AddError(childCtx, graphql.Recover(childCtx, r))
					ret[i] = graphql.Null
				}
			}()
			ret[i] = marshal(childCtx, i)
		}()
	}
	return ret
}
