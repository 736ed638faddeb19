package request

import (
	"context"
	"log/slog"
	"slices"
)

// NoID is the request_id of a warning or error logged outside any request
// (a River job, startup): the key is always there, so a search for lines
// without one finds nothing.
const NoID = "-"

// CodeInternal is the code of an error line that names none (the value of
// apperr.CodeInternal; this package stays below apperr).
const CodeInternal = "INTERNAL"

// LogHandler wraps h so that every warning and error line carries
// request_id (the request's id from the context, or NoID) and every error
// line a code (CodeInternal unless the call site gives one). Operators
// find every line of a failed request from the X-Request-Id a client
// quotes, and can count error lines by code. Lines below warning are left
// as they are.
func LogHandler(h slog.Handler) slog.Handler {
	if lh, ok := h.(*logHandler); ok {
		return lh
	}
	return &logHandler{next: h}
}

type logHandler struct {
	next slog.Handler
	// hasID, hasCode: set by WithAttrs (logger.With("request_id", …)).
	hasID, hasCode bool
}

func (h *logHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h *logHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn {
		return h.next.Handle(ctx, r)
	}
	hasID, hasCode := h.hasID, h.hasCode
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "request_id":
			hasID = true
		case "code":
			hasCode = true
		}
		return true
	})
	if !hasID {
		id := ID(ctx)
		if id == "" {
			id = NoID
		}
		r.AddAttrs(slog.String("request_id", id))
	}
	if !hasCode && r.Level >= slog.LevelError {
		r.AddAttrs(slog.String("code", CodeInternal))
	}
	return h.next.Handle(ctx, r)
}

func (h *logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.next = h.next.WithAttrs(attrs)
	c.hasID = h.hasID || slices.ContainsFunc(attrs, func(a slog.Attr) bool { return a.Key == "request_id" })
	c.hasCode = h.hasCode || slices.ContainsFunc(attrs, func(a slog.Attr) bool { return a.Key == "code" })
	return &c
}

func (h *logHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.next = h.next.WithGroup(name)
	return &c
}
