package console

import (
	"html/template"
	"net/http"

	"github.com/perkshq/perks/internal/account"
	"github.com/perkshq/perks/internal/apperr"
)

// Sign-in, activation and sign-out: the partner portal's flow over the same
// account.Service, in the platform realm. There is no "invite" page:
// platform admins come from `perks admin create`.

type signInData struct{ Email string }

func (c *Console) signInPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusOK, "sign-in", &view{Title: "Sign in", CSRF: c.kit.PreAuthCSRF(w, r)})
}

func (c *Console) badForm(w http.ResponseWriter, r *http.Request) {
	c.fail(w, r, nil, http.StatusForbidden, "This form has expired or did not come from the console. Reload the page and try again.")
}

func (c *Console) signIn(w http.ResponseWriter, r *http.Request) {
	if !c.kit.CheckPreAuthCSRF(r) {
		c.badForm(w, r)
		return
	}
	if c.limited(w, r) {
		return
	}
	old := c.kit.SessionToken(r)
	email := r.PostFormValue("email")
	sess, _, err := c.Accounts.SignIn(r.Context(), c.DB, account.RealmPlatform, email, r.PostFormValue("password"), r.PostFormValue("code"), old)
	if err != nil {
		if old != "" {
			c.kit.ClearSession(w)
		}
		if e := apperr.As(err); e != nil && e.Code == apperr.CodeUnauthenticated {
			c.render(w, r, http.StatusUnauthorized, "sign-in", &view{Title: "Sign in", CSRF: c.kit.PreAuthCSRF(w, r), Error: e.Message, Data: signInData{Email: email}})
			return
		}
		c.fail(w, r, err, 0, "")
		return
	}
	c.kit.SetSession(w, sess)
	securityHeaders(w.Header())
	http.Redirect(w, r, Path+"/partners", http.StatusSeeOther)
}

type activateData struct {
	Token, Email, Secret string
	QR                   template.URL
}

func (c *Console) activatePage(w http.ResponseWriter, r *http.Request) {
	c.activationForm(w, r, r.URL.Query().Get("token"), http.StatusOK, "")
}

// activationForm shows the activation form of a link (with an error), or
// says the link no longer works. Only platform admins' links open here.
func (c *Console) activationForm(w http.ResponseWriter, r *http.Request, tok string, status int, msg string) {
	a, enr, err := c.Accounts.ActivationOffer(r.Context(), c.DB, tok)
	if apperr.Is(err, apperr.CodeTokenInvalid) || (err == nil && a.Realm != account.RealmPlatform) {
		c.render(w, r, http.StatusUnauthorized, "message", &view{Title: "This link does not work any more",
			Error: "This activation link was used or has expired. Ask for a new one: `perks admin create` prints it."})
		return
	}
	if err != nil {
		c.fail(w, r, err, 0, "")
		return
	}
	c.render(w, r, status, "activate", &view{Title: "Activate your console account", CSRF: c.kit.PreAuthCSRF(w, r), Error: msg,
		Data: activateData{Token: tok, Email: a.Email, Secret: enr.Secret, QR: template.URL(enr.QRDataURL())}}) //nolint:gosec // a data: URL we made
}

func (c *Console) activate(w http.ResponseWriter, r *http.Request) {
	if !c.kit.CheckPreAuthCSRF(r) {
		c.badForm(w, r)
		return
	}
	if c.limited(w, r) {
		return
	}
	tok := r.PostFormValue("token")
	pw := r.PostFormValue("password")
	if pw != r.PostFormValue("password2") {
		c.activationForm(w, r, tok, http.StatusUnprocessableEntity, "The two passwords differ.")
		return
	}
	// A link of another realm is refused before it is used.
	if a, _, err := c.Accounts.ActivationOffer(r.Context(), c.DB, tok); err == nil && a.Realm != account.RealmPlatform {
		c.activationForm(w, r, tok, http.StatusUnauthorized, "")
		return
	}
	a, err := c.Accounts.Activate(r.Context(), c.DB, tok, pw, r.PostFormValue("code"))
	if err != nil {
		if e := apperr.As(err); e != nil && e.Code == apperr.CodeInvalidField {
			c.activationForm(w, r, tok, http.StatusUnprocessableEntity, e.Message)
			return
		}
		if apperr.Is(err, apperr.CodeTokenInvalid) {
			c.activationForm(w, r, tok, http.StatusUnauthorized, "")
			return
		}
		c.fail(w, r, err, 0, "")
		return
	}
	c.render(w, r, http.StatusOK, "message", &view{Title: "Account activated",
		Notice: "Your console account " + a.Email + " is active. Sign in with your password and the code from your authenticator app."})
}

func (c *Console) signOut(w http.ResponseWriter, r *http.Request) {
	if err := c.Accounts.SignOut(r.Context(), c.DB, current(r).token); err != nil {
		c.fail(w, r, err, 0, "")
		return
	}
	c.kit.ClearSession(w)
	securityHeaders(w.Header())
	http.Redirect(w, r, Path+"/sign-in", http.StatusSeeOther)
}

func (c *Console) home(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w.Header())
	http.Redirect(w, r, Path+"/partners", http.StatusSeeOther)
}
