package graph

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/perkshq/perks/internal/apperr"
)

// PersistedQueries is how many automatic persisted queries (APQ) the server
// remembers. Queries are at most 16 KiB (the bytes limit), so the cache
// holds at most 16 MiB; a real client sends a few dozen distinct documents.
// The least recently used is forgotten first, and a client whose hash was
// forgotten is told PERSISTED_QUERY_NOT_FOUND and sends the query again,
// as Apollo's persisted-queries link and urql do on their own.
const PersistedQueries = 1000

// persistedQueries is gqlgen's AutomaticPersistedQuery with codes on every
// error: gqlgen's "invalid APQ extension data", "unsupported APQ version"
// and "provided APQ hash does not match query" carry none, so the error
// presenter took them for internal errors (logged, INTERNAL). They are the
// client's mistake: BAD_REQUEST with field extensions.persistedQuery.
// PERSISTED_QUERY_NOT_FOUND (message PersistedQueryNotFound) is kept as
// gqlgen sends it: it is what APQ clients look for.
//
// A query is stored under its hash only when the SHA-256 of the text the
// client sent matches the hash, so nobody can make a hash stand for another
// query. It must run before the document guard, which then measures the
// stored text like any other.
type persistedQueries struct {
	apq extension.AutomaticPersistedQuery
}

var _ interface {
	graphql.OperationParameterMutator
	graphql.HandlerExtension
} = persistedQueries{}

func newPersistedQueries(size int) persistedQueries {
	return persistedQueries{apq: extension.AutomaticPersistedQuery{Cache: lru.New[string](size)}}
}

func (p persistedQueries) ExtensionName() string { return p.apq.ExtensionName() }

func (p persistedQueries) Validate(s graphql.ExecutableSchema) error { return p.apq.Validate(s) }

func (p persistedQueries) MutateOperationParameters(ctx context.Context, raw *graphql.RawParams) *gqlerror.Error {
	err := p.apq.MutateOperationParameters(ctx, raw)
	if err == nil || err.Extensions["code"] != nil {
		return err
	}
	return &gqlerror.Error{
		Message:    "extensions.persistedQuery: " + err.Message + " (send {\"version\": 1, \"sha256Hash\": \"<hex SHA-256 of the query>\"})",
		Extensions: map[string]any{"code": string(apperr.CodeBadRequest), "field": "extensions.persistedQuery"},
	}
}
