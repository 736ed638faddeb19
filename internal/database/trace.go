package database

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/perkshq/perks/internal/tracing"
)

// The prepared statements of QueryRow, Exec and Query bypass bun, so its
// span hook (tracing.BunHook) never sees them: they make their span here,
// the same client span, child of the span in ctx, with the tracer of that
// span's provider (so a process without tracing, or a statement outside any
// request or job, makes none). Their texts carry $n placeholders, never a
// value; SanitizeSQL still runs, once per text, so that a literal written
// into a fixed text never reaches a span either.

// sanitized caches SanitizeSQL per statement text: the texts are fixed,
// a few hundred at most. Past maxSanitized texts (a caller building texts
// from values would be a bug, but must not grow the cache without end) a
// text is sanitized again at every call.
var (
	sanitized      sync.Map
	sanitizedCount atomic.Int64
)

const maxSanitized = 4096

func startSpan(ctx context.Context, query string) trace.Span {
	parent := trace.SpanFromContext(ctx)
	if !parent.SpanContext().IsValid() {
		return nil
	}
	text, ok := sanitized.Load(query)
	if !ok {
		text = tracing.SanitizeSQL(query, tracing.MaxQueryText)
		if sanitizedCount.Load() < maxSanitized {
			if _, loaded := sanitized.LoadOrStore(query, text); !loaded {
				sanitizedCount.Add(1)
			}
		}
	}
	op := operation(query)
	_, span := parent.TracerProvider().Tracer(tracing.Scope).Start(ctx, op, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			tracing.KeyDBSystem.String("postgresql"),
			tracing.KeyDBOperation.String(op),
			tracing.KeyDBQueryText.String(text.(string)),
		))
	return span
}

// endSpan ends span (nil: none), recording err's type as BunHook does.
func endSpan(span trace.Span, err error) {
	if span == nil {
		return
	}
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		span.SetStatus(codes.Error, "")
		span.SetAttributes(tracing.KeyErrorType.String(tracing.ErrorType(err)))
	}
	span.End()
}

// operation is the statement's first keyword, upper-cased (SELECT,
// INSERT, WITH...), as bun names its spans.
func operation(query string) string {
	q := strings.TrimSpace(query)
	end := strings.IndexAny(q, " \t\n\r(")
	if end < 0 {
		end = len(q)
	}
	return strings.ToUpper(q[:end])
}
