package graph

import (
	"context"

	"github.com/99designs/gqlgen/graphql"

	"github.com/perkshq/perks/internal/auth"
	"github.com/perkshq/perks/internal/partner"
)

// environmentExtension puts extensions.environment = "sandbox" in every
// response to a sandbox user's token (docs/sandbox.md), next to the
// Perks-Environment header the HTTP layer sets: clients that only see the
// GraphQL body (a cache, a logging link) still know. Live responses are
// unchanged.
func environmentExtension(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	resp := next(ctx)
	if resp == nil {
		return nil
	}
	if c, _ := auth.ConsumerFrom(ctx); c != nil && c.Partner.IsSandbox() {
		if resp.Extensions == nil {
			resp.Extensions = map[string]any{}
		}
		resp.Extensions["environment"] = partner.EnvironmentSandbox
	}
	return resp
}
