package graph

import (
	"context"
	"sync/atomic"

	"github.com/99designs/gqlgen/graphql"

	"github.com/perkshq/perks/internal/auth"
	"github.com/perkshq/perks/internal/partner"
)

type envKey struct{}

// envMark records that an operation without a sandbox token read a
// sandbox's data anyway (the public `program` query by slug).
type envMark struct{ sandbox atomic.Bool }

// markEnvironment notes that the operation of ctx answered about p.
func markEnvironment(ctx context.Context, p *partner.Partner) {
	if m, ok := ctx.Value(envKey{}).(*envMark); ok && p.IsSandbox() {
		m.sandbox.Store(true)
	}
}

// environmentExtension puts extensions.environment = "sandbox" in every
// response to a sandbox user's token, or about a sandbox named by slug
// (docs/sandbox.md), next to the Perks-Environment header the HTTP layer
// sets for tokens: clients that only see the GraphQL body (a cache, a
// logging link) still know. Live responses are unchanged.
func environmentExtension(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	mark := &envMark{}
	resp := next(context.WithValue(ctx, envKey{}, mark))
	if resp == nil {
		return nil
	}
	c, _ := auth.ConsumerFrom(ctx)
	if (c != nil && c.Partner.IsSandbox()) || mark.sandbox.Load() {
		if resp.Extensions == nil {
			resp.Extensions = map[string]any{}
		}
		resp.Extensions["environment"] = partner.EnvironmentSandbox
	}
	return resp
}
