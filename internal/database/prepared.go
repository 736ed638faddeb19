package database

import (
	"context"
	"database/sql"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/uptrace/bun"
)

// QueryRow and Exec run fixed-text, parametrized statements of hot paths as
// prepared statements cached per connection, so PostgreSQL parses and plans
// them once per connection instead of on every call. bun formats its queries
// with the arguments inlined, which gives every call a distinct text (the
// pool therefore runs them unprepared; see Open); these statements bypass
// bun and pass real $n parameters instead.
//
// Behind a transaction pooler (Options.Pooled) they run unprepared, like
// every other statement: a statement prepared by name lives in one server
// session, and the pooler gives the next transaction another.
//
// Runner is what they need of bun.DB and bun.Tx.
type runner interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// named is false once a pooled database is opened: a process talks to one
// primary, through the pooler or not.
var named atomic.Bool

func init() { named.Store(true) }

// Pooled reports whether this process opened its database through a
// transaction pooler (Options.Pooled): nothing may rely on a session.
func Pooled() bool { return !named.Load() }

// mode is how the hot paths' statements run.
func mode() pgx.QueryExecMode {
	if named.Load() {
		return pgx.QueryExecModeCacheStatement
	}
	return pgx.QueryExecModeExec
}

func unwrap(db bun.IDB) (runner, error) {
	switch d := db.(type) {
	case bun.Tx:
		return d.Tx, nil
	case *bun.Tx:
		return d.Tx, nil
	case *bun.DB:
		return d.DB, nil
	case bun.Conn:
		return d.Conn, nil
	}
	return nil, fmt.Errorf("prepared statement on %T", db)
}

// QueryRow runs a prepared query returning one row.
func QueryRow(ctx context.Context, db bun.IDB, query string, args ...any) (*sql.Row, error) {
	r, err := unwrap(db)
	if err != nil {
		return nil, err
	}
	span := startSpan(ctx, query)
	row := r.QueryRowContext(ctx, query, params(args)...)
	endSpan(span, row.Err())
	return row, nil
}

// Exec runs a prepared statement.
func Exec(ctx context.Context, db bun.IDB, query string, args ...any) (sql.Result, error) {
	r, err := unwrap(db)
	if err != nil {
		return nil, err
	}
	span := startSpan(ctx, query)
	res, err := r.ExecContext(ctx, query, params(args)...)
	endSpan(span, err)
	return res, err
}

// Query runs a prepared query returning rows; the caller closes them.
func Query(ctx context.Context, db bun.IDB, query string, args ...any) (*sql.Rows, error) {
	r, err := unwrap(db)
	if err != nil {
		return nil, err
	}
	span := startSpan(ctx, query)
	rows, err := r.QueryContext(ctx, query, params(args)...)
	endSpan(span, err)
	return rows, err
}

// params are args as pgx takes them best, led by the execution mode. A
// uuid.UUID is a driver.Valuer: pgx would have it format itself as text and
// parse that text back into 16 bytes for every parameter of every call; as
// [16]byte it is sent as it is (the catalog page spent a twentieth of its
// CPU there, docs/benchmarks.md "Issue 18, session 7: catalog page"). A
// nil *uuid.UUID stays NULL. Only for prepared statements, whose parameter
// types pgx knows: behind a transaction pooler (QueryExecModeExec) pgx
// sends untyped text parameters, with no text form for [16]byte or for a
// slice of Valuers, so a uuid goes as its Valuer makes it and a []uuid.UUID
// as the text of each (TestBehindPgBouncer).
func params(args []any) []any {
	out := make([]any, 1, len(args)+1)
	out[0] = mode()
	if !named.Load() {
		for _, a := range args {
			if v, ok := a.([]uuid.UUID); ok {
				s := make([]string, len(v))
				for i, id := range v {
					s[i] = id.String()
				}
				a = s
			}
			out = append(out, a)
		}
		return out
	}
	for _, a := range args {
		switch v := a.(type) {
		case uuid.UUID:
			a = [16]byte(v)
		case *uuid.UUID:
			if v == nil {
				a = nil
			} else {
				a = [16]byte(*v)
			}
		case []uuid.UUID:
			b := make([][16]byte, len(v))
			for i, id := range v {
				b[i] = id
			}
			a = b
		}
		out = append(out, a)
	}
	return out
}

// QueryRowModel runs a prepared query and scans its first row into dest
// as bun scans a model (a struct, by column names), or answers
// sql.ErrNoRows: for a hot-path read whose columns suit a model better than
// a manual Scan.
func QueryRowModel(ctx context.Context, db bun.IDB, dest any, query string, args ...any) error {
	rows, err := Query(ctx, db, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return sql.ErrNoRows
	}
	if err := db.NewRaw("").DB().ScanRow(ctx, rows, dest); err != nil {
		return err
	}
	return rows.Close()
}

// QueryModel runs a prepared query and scans every row into dest (a
// pointer to a slice of structs) as bun scans a model.
func QueryModel(ctx context.Context, db bun.IDB, dest any, query string, args ...any) error {
	rows, err := Query(ctx, db, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	return db.NewRaw("").DB().ScanRows(ctx, rows, dest)
}

// Columns is the comma-separated column list of model's table (a pointer
// to a bun model struct), for a prepared statement's SELECT: named columns,
// so that a column a migration adds does not change a prepared result.
func Columns(db bun.IDB, model any, alias string) string {
	t := db.Dialect().Tables().Get(reflect.TypeOf(model).Elem())
	var b strings.Builder
	for i, f := range t.Fields {
		if i > 0 {
			b.WriteString(", ")
		}
		if alias != "" {
			b.WriteString(alias)
			b.WriteByte('.')
		}
		b.WriteString(string(f.SQLName))
	}
	return b.String()
}
