package webhook

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/perkshq/perks/internal/tracing"
)

// The delivery queue's own statements (load, record) run prepared
// (database.Query, database.Exec): bun inlines every argument, so each call
// of a five-way join had a text of its own that PostgreSQL parsed and
// planned again, which cost more than running it (2.4 ms of planning for
// 1 ms of execution per batch in the webhook-fanout bench). Their arrays go
// as PostgreSQL array literals in text parameters, cast in the statement
// (`$1::uuid[]`): that encoding is the same whether pgx prepares the
// statement or, behind a transaction pooler, runs it unprepared.

// pgArray builds a PostgreSQL array literal. Every element is quoted, so
// any text is safe (quotes and backslashes escaped); a nil element is NULL.
type pgArray struct {
	b strings.Builder
	n int
}

func (a *pgArray) sep() {
	if a.n == 0 {
		a.b.WriteByte('{')
	} else {
		a.b.WriteByte(',')
	}
	a.n++
}

func (a *pgArray) add(s string) {
	a.sep()
	a.b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\\' {
			a.b.WriteByte('\\')
		}
		a.b.WriteByte(s[i])
	}
	a.b.WriteByte('"')
}

func (a *pgArray) null() {
	a.sep()
	a.b.WriteString("NULL")
}

func (a *pgArray) addPtr(s *string) {
	if s == nil {
		a.null()
		return
	}
	a.add(*s)
}

func (a *pgArray) String() string {
	if a.n == 0 {
		return "{}"
	}
	return a.b.String() + "}"
}

func uuidArray(ids []uuid.UUID) string {
	var a pgArray
	for _, id := range ids {
		a.add(id.String())
	}
	return a.String()
}

func intString(n int) string { return strconv.Itoa(n) }

// timeString formats t as bun does (truncated to the microsecond, which
// is what PostgreSQL keeps), so that a time written here reads back equal.
func timeString(t time.Time) string {
	return t.UTC().Truncate(time.Microsecond).Format(time.RFC3339Nano)
}

// traceStatement makes a client span of a prepared statement, as
// tracing.BunHook does for bun's (which never see these), when ctx is in a
// trace. The text has $n placeholders: no value can reach the span.
func traceStatement(ctx context.Context, op, query string) func(error) {
	parent := trace.SpanFromContext(ctx)
	if !parent.SpanContext().IsValid() {
		return func(error) {}
	}
	_, span := parent.TracerProvider().Tracer("github.com/perkshq/perks/internal/webhook").Start(ctx, op,
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			tracing.KeyDBSystem.String("postgresql"),
			tracing.KeyDBOperation.String(op),
			tracing.KeyDBQueryText.String(tracing.SanitizeSQL(query, tracing.MaxQueryText)),
		))
	return func(err error) {
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			span.SetStatus(codes.Error, "")
		}
		span.End()
	}
}
