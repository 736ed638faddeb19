package tracing

import (
	"context"
	"database/sql"
	"errors"
	"strings"

	"github.com/uptrace/bun"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// MaxQueryText bounds db.query.text: a bulk insert's statement can be
// megabytes long even once its values are gone.
const MaxQueryText = 2048

// BunHook makes a client span of every statement bun runs, child of the
// span in the statement's context (the HTTP request's, the job's).
//
// Bun formats every argument into the SQL text before it reaches pgx (we
// run with QueryExecModeExec, see database.Open), so neither bun's
// QueryEvent nor pgx's tracer ever sees the statement without its values:
// the span carries SanitizeSQL's text, in which every literal is a "?". A
// user's email, an external id or a sealed secret therefore never reaches a
// span (TestTraceEarnToWebhook checks it).
type BunHook struct {
	Tracer trace.Tracer
}

var _ bun.QueryHook = (*BunHook)(nil)

// BeforeQuery starts the span. It is kept in the event, not returned in
// the context: bun runs a transaction's statements in the context its BEGIN
// returned, which would make them children of the BEGIN span.
func (h *BunHook) BeforeQuery(ctx context.Context, ev *bun.QueryEvent) context.Context {
	if !trace.SpanFromContext(ctx).SpanContext().IsValid() {
		// A statement outside any request or job (start-up, River's
		// leader, the CLI) would be a trace of its own: noise.
		return ctx
	}
	op := ev.Operation()
	_, span := h.Tracer.Start(ctx, op, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			KeyDBSystem.String("postgresql"),
			KeyDBOperation.String(op),
			KeyDBQueryText.String(SanitizeSQL(ev.Query, MaxQueryText)),
		))
	if ev.Stash == nil {
		ev.Stash = make(map[any]any, 1)
	}
	ev.Stash[spanKey{}] = span
	return ctx
}

type spanKey struct{}

// AfterQuery ends it, recording an error (its type only: PostgreSQL's
// messages quote the offending values).
func (h *BunHook) AfterQuery(_ context.Context, ev *bun.QueryEvent) {
	span, ok := ev.Stash[spanKey{}].(trace.Span)
	if !ok {
		return
	}
	if ev.Err != nil && !errors.Is(ev.Err, sql.ErrNoRows) {
		span.SetStatus(codes.Error, "")
		span.SetAttributes(KeyErrorType.String(ErrorType(ev.Err)))
	}
	span.End()
}

// ErrorType names an error without its message: the SQLSTATE of a
// PostgreSQL error, else "error".
func ErrorType(err error) string {
	var st interface{ SQLState() string }
	if errors.As(err, &st) {
		return st.SQLState()
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	return "error"
}

// SanitizeSQL returns query with every literal replaced by "?": quoted
// strings ('…', E'…', $tag$…$tag$, which also covers bun's arrays, JSON,
// bytea and timestamps), numbers, and comments dropped. Identifiers,
// keywords, operators and quoted identifiers ("…") stay, so the text still
// says which statement ran. The result is cut at max bytes (on a rune
// boundary is not needed: only ASCII identifiers and "?" are left in
// practice, and a cut rune is replaced by the exporter).
func SanitizeSQL(query string, max int) string {
	var b strings.Builder
	b.Grow(min(len(query), max))
	n := len(query)
	lastWasSpace := false
	emit := func(s string) {
		lastWasSpace = false
		b.WriteString(s)
	}
	for i := 0; i < n && b.Len() < max; {
		c := query[i]
		switch {
		case c == '\'' || ((c == 'E' || c == 'e') && i+1 < n && query[i+1] == '\'' && !identBefore(query, i)):
			// A string literal; in E'…' a backslash escapes the next byte.
			escapes := c != '\''
			if escapes {
				i++
			}
			i++
			for i < n {
				if escapes && query[i] == '\\' {
					i += 2
					continue
				}
				if query[i] == '\'' {
					if i+1 < n && query[i+1] == '\'' {
						i += 2
						continue
					}
					i++
					break
				}
				i++
			}
			emit("?")
		case c == '"':
			j := i + 1
			for j < n {
				if query[j] == '"' {
					if j+1 < n && query[j+1] == '"' {
						j += 2
						continue
					}
					j++
					break
				}
				j++
			}
			emit(query[i:min(j, n)])
			i = j
		case c == '$':
			// $1 (a placeholder) stays; $tag$…$tag$ (or $$…$$) is a literal.
			j := i + 1
			if j < n && isDigit(query[j]) {
				for j < n && isDigit(query[j]) {
					j++
				}
				emit(query[i:j])
				i = j
				continue
			}
			for j < n && isIdent(query[j]) {
				j++
			}
			if j < n && query[j] == '$' {
				tag := query[i : j+1]
				if end := strings.Index(query[j+1:], tag); end < 0 {
					i = n
				} else {
					i = j + 1 + end + len(tag)
				}
				emit("?")
				continue
			}
			emit("$")
			i++
		case isDigit(c) && !identBefore(query, i):
			j := i
			for j < n && (isDigit(query[j]) || query[j] == '.' || query[j] == 'e' || query[j] == 'E' ||
				((query[j] == '+' || query[j] == '-') && (query[j-1] == 'e' || query[j-1] == 'E'))) {
				j++
			}
			emit("?")
			i = j
		case c == '-' && i+1 < n && query[i+1] == '-':
			for i < n && query[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < n && query[i+1] == '*':
			end := strings.Index(query[i+2:], "*/")
			if end < 0 {
				i = n
			} else {
				i += 2 + end + 2
			}
		case c == ' ' || c == '\n' || c == '\t' || c == '\r':
			// Runs of white space become one space: statements written
			// over several indented lines stay readable.
			if !lastWasSpace && b.Len() > 0 {
				b.WriteByte(' ')
				lastWasSpace = true
			}
			i++
		default:
			j := i
			for j < n && isIdent(query[j]) {
				j++
			}
			if j == i {
				j = i + 1
			}
			emit(query[i:j])
			i = j
		}
	}
	s := strings.TrimSpace(b.String())
	if len(s) > max {
		s = s[:max]
	}
	return s
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isIdent(c byte) bool {
	return c == '_' || isDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80
}

// identBefore reports whether query[i] continues an identifier (t1, the
// e of "type"), so it is not the start of a number or an E” string.
func identBefore(query string, i int) bool {
	return i > 0 && (isIdent(query[i-1]) || query[i-1] == '$')
}
