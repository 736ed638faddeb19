package merchantportal

import (
	"html/template"
	"net/http"

	"github.com/perkshq/perks/internal/account"
	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/portal"
)

// Sign-in, activation and sign-out: internal/account does the checking
// (one answer for every failure, lockout, fresh session per sign-in),
// portal.Kit the cookies and CSRF tokens.

const expiredForm = "This form has expired or did not come from the portal. Reload the page and try again."

type signInData struct{ Email string }

func (p *Portal) signInPage(w http.ResponseWriter, r *http.Request) {
	p.render(w, r, http.StatusOK, "sign-in", &view{Title: "Sign in", CSRF: p.kit.PreAuthCSRF(w, r)})
}

func (p *Portal) tooMany(w http.ResponseWriter, r *http.Request) bool {
	if !p.kit.Limited(w, r) {
		return false
	}
	p.fail(w, r, nil, http.StatusTooManyRequests, "Too many attempts from your address. Wait a minute and try again.")
	return true
}

func (p *Portal) signIn(w http.ResponseWriter, r *http.Request) {
	if !p.kit.CheckPreAuthCSRF(r) {
		p.fail(w, r, nil, http.StatusForbidden, expiredForm)
		return
	}
	if p.tooMany(w, r) {
		return
	}
	old := p.kit.SessionToken(r)
	email := r.PostFormValue("email")
	sess, _, err := p.Accounts.SignIn(r.Context(), p.DB, account.RealmMerchant, email, r.PostFormValue("password"), r.PostFormValue("code"), old)
	if err != nil {
		if old != "" {
			p.kit.ClearSession(w)
		}
		if e := apperr.As(err); e != nil && e.Code == apperr.CodeUnauthenticated {
			p.render(w, r, http.StatusUnauthorized, "sign-in", &view{Title: "Sign in", CSRF: p.kit.PreAuthCSRF(w, r), Error: e.Message, Data: signInData{Email: email}})
			return
		}
		p.fail(w, r, err, 0, "")
		return
	}
	p.kit.SetSession(w, sess)
	portal.SecurityHeaders(w.Header())
	http.Redirect(w, r, Path, http.StatusSeeOther)
}

type activateData struct {
	Token  string
	Email  string
	Secret string
	QR     template.URL
}

func (p *Portal) activatePage(w http.ResponseWriter, r *http.Request) {
	p.activationForm(w, r, http.StatusOK, r.URL.Query().Get("token"), "")
}

// activationForm shows the activation form of a link, with an error.
func (p *Portal) activationForm(w http.ResponseWriter, r *http.Request, status int, tok, msg string) {
	a, enr, err := p.Accounts.ActivationOffer(r.Context(), p.DB, tok)
	if apperr.Is(err, apperr.CodeTokenInvalid) || (err == nil && a.Realm != account.RealmMerchant) {
		p.render(w, r, http.StatusUnauthorized, "message", &view{Title: "This link does not work any more",
			Error: "This activation link was used or has expired. Ask your merchant admin or your Perks contact for a new one."})
		return
	}
	if err != nil {
		p.fail(w, r, err, 0, "")
		return
	}
	p.render(w, r, status, "activate", &view{Title: "Activate your account", CSRF: p.kit.PreAuthCSRF(w, r), Error: msg,
		Data: activateData{Token: tok, Email: a.Email, Secret: enr.Secret, QR: template.URL(enr.QRDataURL())}})
}

func (p *Portal) activate(w http.ResponseWriter, r *http.Request) {
	if !p.kit.CheckPreAuthCSRF(r) {
		p.fail(w, r, nil, http.StatusForbidden, expiredForm)
		return
	}
	if p.tooMany(w, r) {
		return
	}
	tok, pw := r.PostFormValue("token"), r.PostFormValue("password")
	if pw != r.PostFormValue("password2") {
		p.activationForm(w, r, http.StatusUnprocessableEntity, tok, "The two passwords differ.")
		return
	}
	a, _, err := p.Accounts.ActivationOffer(r.Context(), p.DB, tok)
	if err == nil && a.Realm != account.RealmMerchant {
		err = apperr.New(apperr.CodeTokenInvalid, "this activation link is not for the merchant portal")
	}
	if err == nil {
		a, err = p.Accounts.Activate(r.Context(), p.DB, tok, pw, r.PostFormValue("code"))
	}
	if err != nil {
		if e := apperr.As(err); e != nil && e.Code == apperr.CodeInvalidField {
			p.activationForm(w, r, http.StatusUnprocessableEntity, tok, e.Message)
			return
		}
		p.fail(w, r, err, 0, "")
		return
	}
	p.render(w, r, http.StatusOK, "message", &view{Title: "Account activated",
		Notice: "Your account " + a.Email + " is active. Sign in with your password and the code from your authenticator app."})
}

func (p *Portal) signOut(w http.ResponseWriter, r *http.Request) {
	if err := p.Accounts.SignOut(r.Context(), p.DB, current(r).token); err != nil {
		p.fail(w, r, err, 0, "")
		return
	}
	p.kit.ClearSession(w)
	portal.SecurityHeaders(w.Header())
	http.Redirect(w, r, Path+"/sign-in", http.StatusSeeOther)
}
