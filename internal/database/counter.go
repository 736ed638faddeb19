package database

import (
	"context"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
)

// StatementCounter counts the statements a pool sends while counting is on,
// whatever sends them (bun, the prepared hot paths, BEGIN and COMMIT): tests
// that bound a request's round trips open their pool with one
// (Options.Counter). It is a pgx.QueryTracer.
type StatementCounter struct {
	on atomic.Bool
	n  atomic.Int64
}

// Count runs fn and returns the statements sent meanwhile (by anyone: run
// it with nothing else using the pool).
func (c *StatementCounter) Count(fn func()) int64 {
	c.n.Store(0)
	c.on.Store(true)
	fn()
	c.on.Store(false)
	return c.n.Load()
}

// TraceQueryStart implements pgx.QueryTracer.
func (c *StatementCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	if c.on.Load() {
		c.n.Add(1)
	}
	return ctx
}

// TraceQueryEnd implements pgx.QueryTracer.
func (c *StatementCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
