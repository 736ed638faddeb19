package graph

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"log/slog"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/validator/core"
	"github.com/vektah/gqlparser/v2/validator/rules"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/database"
	"github.com/perkshq/perks/internal/request"
)

// Options are the server limits.
type Options struct {
	MaxDepth      int
	MaxComplexity int
	// Limits are the other document limits; zero fields take
	// DefaultLimits. MaxDepth, MaxComplexity and Introspection above win
	// over the same fields here.
	Limits Limits
	// Introspection turns on __schema/__type and "Did you mean"
	// suggestions in validation errors (development only: both describe
	// the schema to anyone).
	Introspection bool
	Log           *slog.Logger
	// Timeout is the deadline of one operation's resolvers (Timeout
	// when zero).
	Timeout time.Duration
	// Metrics, when set, gets the operations' metrics (operationMetrics).
	Metrics prometheus.Registerer
}

// NewServer builds the GraphQL handler: POST only (GET serves GraphiQL in
// development, mounted separately), bounded depth and complexity, cached
// parsed queries, and errors carrying extensions.code.
//
// Documents are measured before gqlgen parses and validates them (see
// Limits): size, tokens, aliases, expanded fields, repeated fields, depth
// and mutation fields, then the complexity after validation.
func NewServer(r *Resolver, o Options) *handler.Server {
	srv := handler.New(NewExecutableSchema(Config{Resolvers: r}))
	srv.AddTransport(postTransport{})
	srv.AddTransport(otherTransport{}) // last: answers what the others do not support
	srv.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	srv.AroundOperations(withLoaders(r))
	srv.AroundResponses(deadline(o.Timeout))
	srv.AroundResponses(environmentExtension)
	if o.Metrics != nil {
		srv.AroundResponses(newOperationMetrics(o.Metrics).around)
	}
	if o.Introspection {
		srv.Use(extension.Introspection{})
	} else {
		srv.SetDisableSuggestion(true)
		srv.SetValidationRulesFn(validationRules(false))
	}
	limits := o.Limits
	if o.MaxDepth > 0 {
		limits.MaxDepth = o.MaxDepth
	}
	if o.MaxComplexity > 0 {
		limits.MaxComplexity = o.MaxComplexity
	}
	limits.Introspection = o.Introspection
	srv.Use(newPersistedQueries(PersistedQueries)) // before the guard: it measures the stored text
	srv.Use(newDocumentGuard(limits))
	srv.SetErrorPresenter(presenter(o.Log, o.Introspection))
	srv.SetRecoverFunc(func(ctx context.Context, v any) error {
		o.Log.ErrorContext(ctx, "graphql panic", "code", string(apperr.CodeInternal), "request_id", request.ID(ctx), "panic", fmt.Sprint(v))
		return apperr.New(apperr.CodeInternal, "internal error")
	})
	return srv
}

// presenter maps domain errors to GraphQL errors with a stable
// extensions.code; internal errors are logged once and shown generically.
//
// Without suggestions (production), validation messages lose their "Did
// you mean …?" tail: it spells out field, argument, type and enum names
// of the schema, which is introspection by another name. validationRules
// keeps most of them from being written; this catches the rest (ScalarLeafs
// always suggests).
func presenter(log *slog.Logger, suggestions bool) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		gqlErr := present(ctx, log, suggestions, err)
		if code, ok := gqlErr.Extensions["code"].(string); ok {
			request.From(ctx).SetCode(code) // for the access log
		}
		return gqlErr
	}
}

// present is the presenter's mapping of one error.
func present(ctx context.Context, log *slog.Logger, suggestions bool, err error) *gqlerror.Error {
	gqlErr := graphql.DefaultErrorPresenter(ctx, err)
	var existing *gqlerror.Error
	if errors.As(err, &existing) && existing.Extensions["code"] != nil && apperr.As(err) == nil {
		if !suggestions {
			gqlErr.Message = stripSuggestions(gqlErr.Message)
		}
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
		if r := apperr.AuthReason(e.Code); r != "" {
			// One family for every consumer auth failure, so a client
			// library tests one member to refresh or sign out (the
			// code stays what it was for existing clients).
			gqlErr.Extensions["family"] = apperr.FamilyUnauthenticated
			gqlErr.Extensions["authReason"] = r
		}
		return gqlErr
	}
	if database.Unavailable(err) {
		log.WarnContext(ctx, "database unavailable", "code", string(apperr.CodeDatabaseUnavailable), "request_id", request.ID(ctx), "error", err.Error())
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
	log.ErrorContext(ctx, "graphql internal error", "code", string(apperr.CodeInternal), "request_id", request.ID(ctx), "error", err.Error())
	gqlErr.Message = "internal error"
	gqlErr.Extensions = map[string]any{"code": string(apperr.CodeInternal), "requestId": request.ID(ctx)}
	return gqlErr
}

// validationRules is gqlparser's rule set, with the variants of its rules
// that suggest no names when suggestions is false (they also skip the
// edit-distance work the suggestions cost).
func validationRules(suggestions bool) func() *rules.Rules {
	return func() *rules.Rules {
		r := rules.NewDefaultRules()
		if !suggestions {
			for _, rule := range []core.Rule{
				rules.FieldsOnCorrectTypeRuleWithoutSuggestions,
				rules.KnownArgumentNamesRuleWithoutSuggestions,
				rules.KnownTypeNamesRuleWithoutSuggestions,
				rules.ValuesOfCorrectTypeRuleWithoutSuggestions,
			} {
				r.RemoveRule(strings.TrimSuffix(rule.Name, "WithoutSuggestions"))
				r.AddRule(rule.Name, rule.RuleFunc)
			}
		}
		return r
	}
}

// stripSuggestions removes gqlparser's " Did you mean …?" (always the
// message's last sentence) from a validation message.
func stripSuggestions(msg string) string {
	if i := strings.Index(msg, " Did you mean "); i >= 0 && strings.HasSuffix(msg, "?") {
		return msg[:i]
	}
	return msg
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
