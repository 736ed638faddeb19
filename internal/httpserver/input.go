package httpserver

import (
	"log/slog"
	"net/http"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/rest"
	"github.com/perkshq/perks/internal/textcheck"
)

// refuseControlInURL answers 400 INVALID_FIELD when the decoded path or a
// query parameter holds a control character or invalid UTF-8 (%00, %0A,
// %FF...). Path segments and query values reach the database as lookup
// keys: bun drops NUL bytes from inlined strings, so /users/a%00b would
// have found user "ab", and PostgreSQL refuses other bytes with a 500.
// The check runs before authentication: it reveals nothing, and the
// request is refused the same for everyone.
func refuseControlInURL(next http.Handler, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := checkURL(r); err != nil {
			rest.WriteError(w, r, log, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func checkURL(r *http.Request) error {
	if _, _, bad := textcheck.Bad(r.URL.Path, false); bad {
		return apperr.Field(apperr.CodeInvalidField, "path", "the path must not contain control characters or invalid UTF-8")
	}
	if r.URL.RawQuery == "" {
		return nil
	}
	q := r.URL.Query()
	for k, vs := range q {
		if _, _, bad := textcheck.Bad(k, false); bad {
			return apperr.Field(apperr.CodeInvalidField, "query", "query parameter names must not contain control characters or invalid UTF-8")
		}
		for _, v := range vs {
			if r, pos, bad := textcheck.Bad(v, false); bad {
				return textcheck.Error(k, r, pos)
			}
		}
	}
	return nil
}
