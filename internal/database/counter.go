package database

import (
	"context"
	"strings"
	"sync"
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

	mu    sync.Mutex
	texts []string
}

// Count runs fn and returns the statements sent meanwhile (by anyone: run
// it with nothing else using the pool).
func (c *StatementCounter) Count(fn func()) int64 {
	c.n.Store(0)
	c.mu.Lock()
	c.texts = nil
	c.mu.Unlock()
	c.on.Store(true)
	fn()
	c.on.Store(false)
	return c.n.Load()
}

// TraceQueryStart implements pgx.QueryTracer.
func (c *StatementCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if c.on.Load() {
		c.n.Add(1)
		first, _, _ := strings.Cut(strings.TrimSpace(d.SQL), "\n")
		c.mu.Lock()
		c.texts = append(c.texts, first)
		c.mu.Unlock()
	}
	return ctx
}

// Texts are the first lines of the statements of the last Count, for a
// failing test's message.
func (c *StatementCounter) Texts() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.texts, "\n")
}

// TraceQueryEnd implements pgx.QueryTracer.
func (c *StatementCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
