package database

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
)

// Unavailable reports whether err means the database could not be reached
// or dropped the connection (an outage, a failover, a restart), as opposed
// to a failed statement: the request did not run or was rolled back, and
// the same request may succeed later. Transports answer it 503 with
// Retry-After instead of 500.
//
// It recognises: connection errors of pgx (dial, TLS, authentication
// refused at startup, "database does not allow connections"), a closed
// pool, broken connections (io.ErrUnexpectedEOF, net errors, ECONNRESET,
// ECONNREFUSED, driver.ErrBadConn, sql.ErrConnDone), and the server's own
// SQLSTATEs for it: class 08 (connection exception), 57P01-57P03
// (terminated by an administrator, crash, cannot connect now) and 53300
// (too many connections).
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return strings.HasPrefix(pe.Code, "08") || pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03" || pe.Code == "53300"
	}
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.EPIPE) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		return true
	}
	// pgx reports a use of a connection that already died as a bare
	// "conn closed", and a closed pool as "closed pool".
	msg := err.Error()
	return strings.Contains(msg, "conn closed") || strings.Contains(msg, "closed pool")
}
