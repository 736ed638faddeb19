package portal

import (
	"crypto/subtle"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/account"
	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/ratelimit"
)

// Kit is the web glue the other account realms' consoles (the merchant
// portal, issue 17) share with the partner portal, so that session
// cookies, CSRF tokens, sign-in rate limits and security headers follow one
// set of rules: the same as this package's (see the package comment).
// Accounts, passwords, TOTP, sessions and the audit log are
// internal/account's and internal/audit's; Kit only carries them over HTTP.
type Kit struct {
	DB       bun.IDB
	Accounts *account.Service
	// Realm is the account realm the console signs in (a session of another
	// realm is no session here).
	Realm string
	// Name names the cookies: perks_<Name> and perks_<Name>_csrf, with the
	// __Host- prefix when Secure.
	Name   string
	Secure bool
	// CookiePath scopes the cookies to the console's path (the platform
	// console's /admin, so the partner portal never receives its session)
	// when not Secure; the __Host- prefix requires "/", which is used then.
	CookiePath string
	// Limiter and SignInLimit rate-limit sign-in and activation attempts
	// per client address (DefaultSignInLimit when zero).
	Limiter     *ratelimit.Limiter
	SignInLimit ratelimit.Limit
}

// SecurityHeaders sets the portal's strict headers (CSP, no framing, no
// referrer, no-store) on h.
func SecurityHeaders(h http.Header) { securityHeaders(h) }

// ClientIP is the address sign-in attempts are counted under.
func ClientIP(r *http.Request) string { return clientIP(r) }

func (k *Kit) path() string {
	if k.Secure || k.CookiePath == "" {
		return "/"
	}
	return k.CookiePath
}

func (k *Kit) cookie(suffix string) string {
	if k.Secure {
		return "__Host-perks_" + k.Name + suffix
	}
	return "perks_" + k.Name + suffix
}

// SessionToken is the session cookie the request brought ("" if none).
func (k *Kit) SessionToken(r *http.Request) string {
	if c, err := r.Cookie(k.cookie("")); err == nil {
		return c.Value
	}
	return ""
}

// Session loads the request's session and account: nil, nil when there is
// none, it ended, or it belongs to another realm.
func (k *Kit) Session(r *http.Request) (*account.Session, *account.Account, error) {
	sess, acc, err := k.Accounts.Session(r.Context(), k.DB, k.SessionToken(r))
	if err != nil || sess == nil || acc.Realm != k.Realm {
		return nil, nil, err
	}
	return sess, acc, nil
}

// CheckCSRF reports whether a signed-in POST carries the session's token.
func (k *Kit) CheckCSRF(r *http.Request, s *account.Session) bool {
	got := r.PostFormValue("csrf")
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(s.CSRFToken)) == 1
}

// PreAuthCSRF returns the double-submit token of the sign-in and
// activation forms, setting its cookie when the browser has none.
func (k *Kit) PreAuthCSRF(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(k.cookie("_csrf")); err == nil && len(c.Value) >= 32 && len(c.Value) <= 64 {
		return c.Value
	}
	tok := account.NewToken()
	http.SetCookie(w, &http.Cookie{Name: k.cookie("_csrf"), Value: tok, Path: k.path(), HttpOnly: true, Secure: k.Secure, SameSite: http.SameSiteStrictMode})
	return tok
}

// CheckPreAuthCSRF reports whether the form's token matches the cookie.
func (k *Kit) CheckPreAuthCSRF(r *http.Request) bool {
	c, err := r.Cookie(k.cookie("_csrf"))
	got := r.PostFormValue("csrf")
	return err == nil && got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(c.Value)) == 1
}

// SetSession sets the session cookie of a new sign-in.
func (k *Kit) SetSession(w http.ResponseWriter, s *account.Session) {
	_, abs := k.Accounts.Timeouts()
	http.SetCookie(w, &http.Cookie{Name: k.cookie(""), Value: s.Token, Path: k.path(), HttpOnly: true, Secure: k.Secure,
		SameSite: http.SameSiteLaxMode, MaxAge: int(abs.Seconds())})
}

// ClearSession deletes the session cookie.
func (k *Kit) ClearSession(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: k.cookie(""), Value: "", Path: k.path(), HttpOnly: true, Secure: k.Secure, SameSite: http.SameSiteLaxMode, MaxAge: -1})
}

// Limited counts a sign-in or activation attempt of the client address and
// reports whether it is over the limit; if so it has set Retry-After and
// the caller answers 429.
func (k *Kit) Limited(w http.ResponseWriter, r *http.Request) bool {
	if k.Limiter == nil {
		k.Limiter = &ratelimit.Limiter{Now: time.Now}
	}
	lim := k.SignInLimit
	if lim == (ratelimit.Limit{}) {
		lim = DefaultSignInLimit
	}
	res := k.Limiter.Allow(k.Name+"-sign-in:"+clientIP(r), lim)
	if res.Allowed {
		return false
	}
	w.Header().Set("Retry-After", fmt.Sprint(int(res.RetryAfter.Seconds())+1))
	return true
}

// Stylesheet is the URL of the portal's stylesheet, which the other
// consoles link too so the three look alike.
const Stylesheet = Path + "/assets/portal.css"

// WriteHTML renders t (the page named page) with v and writes it with status and the strict
// headers. The page is rendered into a buffer first, so a template error
// answers a plain 500 (logged under who) rather than half a page.
func WriteHTML(w http.ResponseWriter, r *http.Request, log *slog.Logger, who, page string, t *template.Template, status int, v any) {
	h := w.Header()
	securityHeaders(h)
	h.Set("Content-Type", "text/html; charset=utf-8")
	var buf strings.Builder
	if err := t.Execute(&buf, v); err != nil {
		log.ErrorContext(r.Context(), who+": render", "page", page, "error", err.Error())
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, "internal error\n")
		return
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, buf.String())
}

// Failure is what an error page shows: err's status and message when it is
// an apperr.Error, a generic 500 (logged under who, without what a user
// typed) for any other error; status and msg when err is nil.
func Failure(r *http.Request, log *slog.Logger, who string, err error, status int, msg string) (int, string) {
	if err == nil {
		return status, msg
	}
	if e := apperr.As(err); e != nil {
		return apperr.Lookup(e.Code).Status, e.Message
	}
	log.ErrorContext(r.Context(), who+": request failed", "path", r.URL.Path, "error", err.Error())
	return http.StatusInternalServerError, "Something went wrong on our side. Try again later."
}
