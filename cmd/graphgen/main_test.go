package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRewrite(t *testing.T) {
	t.Parallel()
	const src = "package graph\n\nfunc (ec *executionContext) marshalNA2(ctx context.Context) graphql.Marshaler {\n\tret := graphql.MarshalSliceConcurrently(ctx, 1)\n\treturn ret\n}\n\n" +
		"func (ec *executionContext) marshalNB2(ctx context.Context) graphql.Marshaler {\n\tret := graphql.MarshalSliceConcurrently(ctx, 1)\n\treturn ret\n}\n\n" +
		"func (ec *executionContext) marshalNC2(ctx context.Context) graphql.Marshaler {\n\treturn nil\n}\n"

	for _, tt := range []struct {
		name  string
		funcs []string
		want  string
		err   string
	}{
		{name: "only the named function", funcs: []string{"marshalNB2"},
			want: "package graph\n\nfunc (ec *executionContext) marshalNA2(ctx context.Context) graphql.Marshaler {\n\tret := graphql.MarshalSliceConcurrently(ctx, 1)\n\treturn ret\n}\n\n" +
				"func (ec *executionContext) marshalNB2(ctx context.Context) graphql.Marshaler {\n\tret := marshalSliceInOrder(ctx, 1)\n\treturn ret\n}\n\n" +
				"func (ec *executionContext) marshalNC2(ctx context.Context) graphql.Marshaler {\n\treturn nil\n}\n"},
		{name: "a pruned function is skipped", funcs: []string{"marshalNZ2"}, want: src},
		{name: "a function without the call is an error", funcs: []string{"marshalNC2"}, err: "marshalNC2"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := rewrite(src, tt.funcs)
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}
