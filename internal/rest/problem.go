// Package rest is the REST transport for partner back ends, merchants and
// the seed's /me: decode and validate, call a domain service, encode. Errors
// are RFC 9457 problem documents carrying a stable code.
package rest

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/database"
	"github.com/perkshq/perks/internal/request"
)

// Problem is an RFC 9457 problem document with Perks' extensions.
type Problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Code      string `json:"code"`
	Detail    string `json:"detail"`
	Field     string `json:"field,omitempty"`
	Reason    string `json:"reason,omitempty"`
	RequestID string `json:"requestId"`

	// Family and AuthReason: on consumer authentication failures only,
	// "UNAUTHENTICATED" and missing, invalid, expired, revoked or
	// anonymised (apperr.AuthReason), as GraphQL's extensions.
	Family     string `json:"family,omitempty"`
	AuthReason string `json:"authReason,omitempty"`
}

// ProblemTypeBase prefixes problem types; the fragment is the code, which
// docs/errors.md uses as its anchors.
const ProblemTypeBase = "https://perks.dev/docs/errors#"

// DatabaseRetryAfterSeconds is the Retry-After of DATABASE_UNAVAILABLE: a
// failover or restart usually completes within seconds.
const DatabaseRetryAfterSeconds = 5

// WriteError answers with the problem for err. Errors that are not
// *apperr.Error are logged once, with the request id, and shown as INTERNAL.
func WriteError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	writeError(w, r, log, err, false)
}

// writeError is WriteError; consumerAuth marks a consumer token's refusal,
// which also carries the UNAUTHENTICATED family and its authReason.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error, consumerAuth bool) {
	e := apperr.As(err)
	if e == nil {
		switch {
		case database.Unavailable(err):
			// An outage, not a bug: logged once as a warning, answered 503
			// so clients and load balancers retry.
			log.WarnContext(r.Context(), "database unavailable", "code", string(apperr.CodeDatabaseUnavailable), "request_id", request.ID(r.Context()),
				"method", r.Method, "route", r.Pattern, "error", err.Error())
			e = apperr.New(apperr.CodeDatabaseUnavailable, "the database is unavailable; nothing was changed, retry later")
			e.RetryAfterSeconds = DatabaseRetryAfterSeconds
		case errors.Is(err, context.DeadlineExceeded):
			e = apperr.New(apperr.CodeTimeout, "the operation did not finish in time and was rolled back")
		case r.Context().Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, sql.ErrTxDone)):
			// The client went away and database/sql rolled the transaction
			// back: not an internal error, and nobody reads the answer.
			e = apperr.New(apperr.CodeUnavailable, "the request was cancelled")
		default:
			log.ErrorContext(r.Context(), "internal error", "code", string(apperr.CodeInternal), "request_id", request.ID(r.Context()),
				"method", r.Method, "route", r.Pattern, "error", err.Error())
			e = apperr.New(apperr.CodeInternal, "internal error")
		}
	}
	request.From(r.Context()).SetCode(string(e.Code))
	info := apperr.Lookup(e.Code)
	if e.RetryAfterSeconds > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfterSeconds))
	}
	p := Problem{
		Type: ProblemTypeBase + string(e.Code), Title: info.Title, Status: info.Status, Code: string(e.Code),
		Detail: e.Message, Field: e.Field, Reason: e.Reason, RequestID: request.ID(r.Context()),
	}
	if consumerAuth {
		if p.AuthReason = apperr.AuthReason(e.Code); p.AuthReason != "" {
			p.Family = apperr.FamilyUnauthenticated
		}
	}
	writeJSON(w, "application/problem+json", info.Status, p)
}

// WriteJSON answers with v as application/json.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	writeJSON(w, "application/json", status, v)
}

func writeJSON(w http.ResponseWriter, contentType string, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"code":"INTERNAL"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
