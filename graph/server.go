package graph

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/database"
	"github.com/perkshq/perks/internal/request"
)

// Options are the server limits.
type Options struct {
	MaxDepth      int
	MaxComplexity int
	Introspection bool
	Log           *slog.Logger
	// Timeout is the deadline of one operation's resolvers (Timeout
	// when zero).
	Timeout time.Duration
}

// NewServer builds the GraphQL handler: POST only (GET serves GraphiQL in
// development, mounted separately), bounded depth and complexity, cached
// parsed queries, and errors carrying extensions.code.
func NewServer(r *Resolver, o Options) *handler.Server {
	srv := handler.New(NewExecutableSchema(Config{Resolvers: r}))
	srv.AddTransport(transport.POST{})
	srv.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	srv.AroundOperations(withLoaders(r))
	srv.AroundResponses(deadline(o.Timeout))
	if o.Introspection {
		srv.Use(extension.Introspection{})
	}
	srv.Use(extension.FixedComplexityLimit(o.MaxComplexity))
	srv.Use(depthLimit{max: o.MaxDepth})
	srv.SetErrorPresenter(presenter(o.Log))
	srv.SetRecoverFunc(func(ctx context.Context, v any) error {
		o.Log.ErrorContext(ctx, "graphql panic", "request_id", request.ID(ctx), "panic", fmt.Sprint(v))
		return apperr.New(apperr.CodeInternal, "internal error")
	})
	return srv
}

// presenter maps domain errors to GraphQL errors with a stable
// extensions.code; internal errors are logged once and shown generically.
func presenter(log *slog.Logger) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		gqlErr := graphql.DefaultErrorPresenter(ctx, err)
		var existing *gqlerror.Error
		if errors.As(err, &existing) && existing.Extensions["code"] != nil && apperr.As(err) == nil {
			return gqlErr // parser/validation errors already carry a code
		}
		if e := apperr.As(err); e != nil {
			gqlErr.Message = e.Message
			gqlErr.Extensions = map[string]any{"code": string(e.Code)}
			if e.Field != "" {
				gqlErr.Extensions["field"] = e.Field
			}
			if e.RetryAfterSeconds > 0 {
				gqlErr.Extensions["retryAfterSeconds"] = e.RetryAfterSeconds
			}
			if e.Reason != "" {
				gqlErr.Extensions["reason"] = e.Reason
			}
			return gqlErr
		}
		if database.Unavailable(err) {
			log.WarnContext(ctx, "database unavailable", "request_id", request.ID(ctx), "error", err.Error())
			gqlErr.Message = "the database is unavailable; nothing was changed, retry later"
			gqlErr.Extensions = map[string]any{"code": string(apperr.CodeDatabaseUnavailable), "retryAfterSeconds": 5}
			return gqlErr
		}
		if errors.Is(err, context.DeadlineExceeded) {
			gqlErr.Message = "the operation timed out"
			gqlErr.Extensions = map[string]any{"code": string(apperr.CodeTimeout)}
			return gqlErr
		}
		if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, sql.ErrTxDone)) {
			// The client went away: database/sql rolled the transaction
			// back. Nobody reads this answer and nothing is wrong here.
			log.DebugContext(ctx, "graphql request cancelled", "request_id", request.ID(ctx))
			gqlErr.Message = "the request was cancelled"
			gqlErr.Extensions = map[string]any{"code": string(apperr.CodeUnavailable)}
			return gqlErr
		}
		if errors.As(err, &existing) && existing.Rule != "" {
			return gqlErr
		}
		log.ErrorContext(ctx, "graphql internal error", "request_id", request.ID(ctx), "error", err.Error())
		gqlErr.Message = "internal error"
		gqlErr.Extensions = map[string]any{"code": string(apperr.CodeInternal), "requestId": request.ID(ctx)}
		return gqlErr
	}
}

// depthLimit refuses operations nested deeper than max, before execution.
type depthLimit struct{ max int }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = depthLimit{}

func (depthLimit) ExtensionName() string                   { return "DepthLimit" }
func (depthLimit) Validate(graphql.ExecutableSchema) error { return nil }
func (d depthLimit) MutateOperationContext(ctx context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil {
		return nil
	}
	if depth := selectionDepth(oc.Operation.SelectionSet, oc.Doc.Fragments, 0); depth > d.max {
		return &gqlerror.Error{
			Message:    fmt.Sprintf("operation is nested %d levels deep; the limit is %d", depth, d.max),
			Extensions: map[string]any{"code": "DEPTH_LIMIT_EXCEEDED"},
		}
	}
	return nil
}

func selectionDepth(set ast.SelectionSet, frags ast.FragmentDefinitionList, seen int) int {
	if seen > 64 { // fragment cycles are rejected by validation; stay bounded anyway
		return seen
	}
	max := 0
	for _, s := range set {
		var d int
		switch s := s.(type) {
		case *ast.Field:
			if len(s.SelectionSet) == 0 {
				d = 1
			} else {
				d = 1 + selectionDepth(s.SelectionSet, frags, seen+1)
			}
		case *ast.InlineFragment:
			d = selectionDepth(s.SelectionSet, frags, seen+1)
		case *ast.FragmentSpread:
			if f := frags.ForName(s.Name); f != nil {
				d = selectionDepth(f.SelectionSet, frags, seen+1)
			}
		}
		if d > max {
			max = d
		}
	}
	return max
}

// Timeout is the default deadline of one operation's resolvers.
const Timeout = 10 * time.Second

// deadline bounds the resolvers of an operation: they run under a context
// that ends after d, so a slow query is cancelled, its transaction rolled
// back, and the presenter answers TIMEOUT. Work that ignores its context
// is not interrupted, but no resolver here does.
func deadline(d time.Duration) graphql.ResponseMiddleware {
	if d <= 0 {
		d = Timeout
	}
	return func(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
		ctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		return next(ctx)
	}
}
