package rest

import (
	"compress/gzip"
	"net/http"
	"strconv"
	"strings"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/auth"
	"github.com/perkshq/perks/internal/export"
)

// HeaderNextCursor carries the export's next cursor.
const HeaderNextCursor = "X-Next-Cursor"

// exportWriter sends headers on Begin, then streams (gzipped when asked).
type exportWriter struct {
	w      http.ResponseWriter
	gz     *gzip.Writer
	ctype  string
	export *export.Service
	begun  bool
}

func (e *exportWriter) Begin(p export.Page) error {
	h := e.w.Header()
	h.Set("Content-Type", e.ctype)
	h.Set(HeaderNextCursor, e.export.Encode(p.Next))
	h.Set("X-Has-More", strconv.FormatBool(p.HasMore))
	h.Set("Cache-Control", "no-store")
	if e.gz != nil {
		h.Set("Content-Encoding", "gzip")
		h.Add("Vary", "Accept-Encoding")
	}
	e.w.WriteHeader(http.StatusOK)
	e.begun = true
	return nil
}

func (e *exportWriter) Write(b []byte) (int, error) {
	if e.gz != nil {
		return e.gz.Write(b)
	}
	n, err := e.w.Write(b)
	if f, ok := e.w.(http.Flusher); ok && len(b) >= 32<<10 {
		f.Flush()
	}
	return n, err
}

// exportUsers is seed 001 user/incrementalinfos: NDJSON (default) or CSV
// (Accept: text/csv), gzip on Accept-Encoding, streamed.
func (a *API) exportUsers(w http.ResponseWriter, r *http.Request, p *auth.PartnerPrincipal) error {
	q := r.URL.Query()
	cur := export.Cursor{PartnerID: p.Partner.ID}
	if v := q.Get("cursor"); v != "" {
		c, err := a.Export.Decode(p.Partner.ID, v)
		if err != nil {
			return err
		}
		cur = c
	}
	limit := 0
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1_000_000 {
			return apperr.Field(apperr.CodeInvalidField, "limit", "limit must be between 1 and 1000000 (omit it for everything)")
		}
		limit = n
	}
	format, ctype := export.NDJSON, "application/x-ndjson"
	if strings.Contains(r.Header.Get("Accept"), "text/csv") || q.Get("format") == "csv" {
		format, ctype = export.CSV, "text/csv; charset=utf-8"
	}
	ew := &exportWriter{w: w, ctype: ctype, export: a.Export}
	if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		ew.gz, _ = gzip.NewWriterLevel(w, gzip.BestSpeed)
	}
	_, err := a.Export.Stream(r.Context(), cur, limit, format, ew)
	if err != nil && !ew.begun {
		return err
	}
	if err != nil {
		// Headers are gone: cut the stream so the client sees a truncated
		// body without the final cursor line, and log once.
		a.Log.ErrorContext(r.Context(), "export stream failed", "error", err.Error())
		panic(http.ErrAbortHandler)
	}
	if ew.gz != nil {
		return ew.gz.Close()
	}
	return nil
}
