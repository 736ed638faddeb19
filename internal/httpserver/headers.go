package httpserver

import (
	"net/http"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/rest"
)

// Header limits. Go's http.Server answers requests whose headers exceed
// its MaxHeaderBytes itself, with a plain-text 431, before any handler
// runs. So the server reads up to ServerMaxHeaderBytes, and limitHeaders
// enforces MaxHeaderBytes, answering 431 as problem+json with the code
// REQUEST_HEADERS_TOO_LARGE and a hint (a request JWT repeating a bulk body
// in data_body is the usual cause: use data_body_sha256). Only requests
// beyond ServerMaxHeaderBytes still get Go's plain answer.
const (
	MaxHeaderBytes       = 64 << 10
	ServerMaxHeaderBytes = 4 << 20
)

// headerBytes counts a request's header the way it came on the wire
// (request line, "Name: value\r\n" per field), near enough for a limit.
func headerBytes(r *http.Request) int {
	n := len(r.Method) + len(r.RequestURI) + len(r.Proto) + 4
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// limitHeaders refuses requests whose headers exceed max.
func limitHeaders(next http.Handler, max int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if headerBytes(r) > max {
			rest.WriteError(w, r, nil, apperr.New(apperr.CodeRequestHeadersTooLarge,
				"the request headers exceed %d bytes; for a large body signed with a request JWT, send data_body_sha256 (the SHA-256 of the body) instead of data_body", max))
			return
		}
		next.ServeHTTP(w, r)
	})
}
