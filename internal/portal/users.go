package portal

import (
	"context"
	"encoding/json"
	"html/template"
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/account"
	"github.com/perkshq/perks/internal/adjustment"
	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/audit"
	"github.com/perkshq/perks/internal/idempotency"
	"github.com/perkshq/perks/internal/ledger"
	"github.com/perkshq/perks/internal/user"
	"github.com/perkshq/perks/internal/voucher"
)

// The Users page is seed 000's admin panel: look an end user up by
// external id and see what the partner API shows of them (GET
// /integrations/users/{externalUserId}, .../entries, .../vouchers: profile,
// balance, history, vouchers, never a voucher's code); with the `users`
// permission, adjust points with a reason (adjustment.Service, as POST
// .../adjustments), log the user out everywhere (user.Service, as POST
// .../logout), and anonymise or erase them (as DELETE
// .../{externalUserId}?mode=) after typing their external id to confirm.
// Every change is audited in its own transaction.

// extraFuncs are the template functions of this file's pages, on top of
// portal.go's.
var extraFuncs = template.FuncMap{
	"deref": func(s *string) string {
		if s == nil {
			return ""
		}
		return *s
	},
	"userPath":   func(ext string) string { return Path + "/users/" + url.PathEscape(ext) },
	"queryEsc":   url.QueryEscape,
	"plusMinus":  plusMinus,
	"eventTypes": eventTypeChoices,
}

// addPages parses page templates with the layout and both function maps.
func addPages(names ...string) {
	fm := template.FuncMap{}
	maps.Copy(fm, funcs)
	maps.Copy(fm, extraFuncs)
	for _, name := range names {
		pages[name] = template.Must(template.New("layout.html").Funcs(fm).ParseFS(files, "templates/layout.html", "templates/"+name+".html"))
	}
}

func init() { addPages("users", "user") }

func (p *Portal) registerUsers(h func(string, http.HandlerFunc)) {
	h("GET "+Path+"/users", p.authed(account.PermView, p.usersSearch))
	h("GET "+Path+"/users/{ext}", p.authed(account.PermView, p.userPage))
	h("POST "+Path+"/users/{ext}/adjust", p.authed(account.PermUsers, p.adjustUser))
	h("POST "+Path+"/users/{ext}/logout", p.authed(account.PermUsers, p.logoutUser))
	h("POST "+Path+"/users/{ext}/delete", p.authed(account.PermUsers, p.deleteUser))
}

type usersData struct{ Query string }

// usersSearch finds a user by external id and sends the browser to their
// page; an unknown id says so on the search page.
func (p *Portal) usersSearch(w http.ResponseWriter, r *http.Request) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	v := &view{Title: "Users", Nav: "users", Data: usersData{Query: q}}
	if _, set := r.URL.Query()["q"]; !set {
		p.render(w, r, http.StatusOK, "users", v)
		return
	}
	if err := user.ValidateExternalID("q", q); err != nil {
		v.Error = "Type an external user id (1 to 255 characters, no control characters)."
		p.render(w, r, http.StatusBadRequest, "users", v)
		return
	}
	if _, err := p.Users.Get(r.Context(), p.DB, current(r).Partner.ID, q); err != nil {
		if e := apperr.As(err); e != nil && apperr.Lookup(e.Code).Status == http.StatusNotFound {
			v.Error = "No user has this external id."
			p.render(w, r, http.StatusNotFound, "users", v)
			return
		}
		p.fail(w, r, err, 0, "")
		return
	}
	securityHeaders(w.Header())
	http.Redirect(w, r, Path+"/users/"+url.PathEscape(q), http.StatusSeeOther)
}

// userPageSize is the history and voucher page size.
const userPageSize = 20

type userData struct {
	Ext  string
	User *user.User
	// Attributes is the custom attributes as JSON ({} when none).
	Attributes  string
	Summary     *ledger.Summary
	Entries     []ledger.Entry
	Before      int64
	NextBefore  int64
	Vouchers    []voucherRow
	VBefore     int64
	NextVBefore int64
	// Key is the adjustment form's idempotency key: a double submit of
	// the same form applies once.
	Key    string
	Points string
	Reason string
	// Confirm is what was typed in the erase confirmation.
	Confirm string
}

// voucherRow is a voucher as the partner API shows it (no code).
type voucherRow struct {
	ID         uuid.UUID
	GiftID     uuid.UUID
	Status     string
	CostPoints int64
	ClaimedAt  any
	ExpiresAt  any
	Refunded   bool
}

func (p *Portal) userPage(w http.ResponseWriter, r *http.Request) {
	p.showUser(w, r, http.StatusOK, "", "", nil)
}

// pageParam reads a positive keyset bound (?before=), 0 when absent.
func pageParam(r *http.Request, name string) (int64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 {
		return 0, apperr.Field(apperr.CodeInvalidField, name, "%s must be a positive whole number taken from a Next link", name)
	}
	return n, nil
}

// showUser renders a user's page with a notice or error; form refills the
// adjustment form after a refused submission (nil: a fresh form).
func (p *Portal) showUser(w http.ResponseWriter, r *http.Request, status int, notice, errMsg string, form *userData) {
	me := current(r)
	ext := r.PathValue("ext")
	if err := user.ValidateExternalID("externalUserId", ext); err != nil {
		p.fail(w, r, nil, http.StatusNotFound, "No user has this external id.")
		return
	}
	before, err := pageParam(r, "before")
	if err != nil {
		p.fail(w, r, err, 0, "")
		return
	}
	vbefore, err := pageParam(r, "vbefore")
	if err != nil {
		p.fail(w, r, err, 0, "")
		return
	}
	ctx := r.Context()
	u, err := p.Users.Get(ctx, p.DB, me.Partner.ID, ext)
	if err != nil {
		p.fail(w, r, err, 0, "")
		return
	}
	d := userData{Ext: ext, User: u, Attributes: "{}", Before: before, VBefore: vbefore, Key: account.NewToken()}
	if len(u.Attributes) > 0 {
		d.Attributes = string(u.Attributes)
	}
	if form != nil {
		d.Key, d.Points, d.Reason, d.Confirm = form.Key, form.Points, form.Reason, form.Confirm
	}
	if d.Summary, err = p.Ledger.SummaryOf(ctx, p.DB, me.Partner.ID, u.ID); err != nil {
		p.fail(w, r, err, 0, "")
		return
	}
	if d.Entries, err = p.Ledger.History(ctx, p.DB, me.Partner.ID, u.ID, ledger.DirectionAll, before, userPageSize+1); err != nil {
		p.fail(w, r, err, 0, "")
		return
	}
	if len(d.Entries) > userPageSize {
		d.Entries = d.Entries[:userPageSize]
		d.NextBefore = d.Entries[userPageSize-1].ID
	}
	now := p.now()
	vs, err := p.Vouchers.List(ctx, p.DB, me.Partner.ID, u.ID, now, voucher.ListQuery{BeforeSeq: vbefore, Limit: userPageSize + 1})
	if err != nil {
		p.fail(w, r, err, 0, "")
		return
	}
	if len(vs) > userPageSize {
		vs = vs[:userPageSize]
		d.NextVBefore = vs[userPageSize-1].Seq
	}
	for i := range vs {
		v := &vs[i]
		d.Vouchers = append(d.Vouchers, voucherRow{ID: v.ID, GiftID: v.GiftID, Status: string(v.EffectiveStatus(now)), CostPoints: v.CostPoints,
			ClaimedAt: v.ClaimedAt, ExpiresAt: v.ExpiresAt, Refunded: v.RefundEntryID != nil})
	}
	p.render(w, r, status, "user", &view{Title: "User " + ext, Nav: "users", Notice: notice, Error: errMsg, Data: d})
}

// now is the portal's clock.
func (p *Portal) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// adjustOutcome is what an adjustment stores for a double submit.
type adjustOutcome struct {
	EntryID int64 `json:"entryId"`
	Points  int64 `json:"points"`
	Balance int64 `json:"balance"`
}

// adjustUser applies an adjustment once per form: the form's random key is
// the idempotency key (idempotency.Run, as an Idempotency-Key header for
// the REST route), so a double click or a resent form applies it once and
// shows the same answer.
func (p *Portal) adjustUser(w http.ResponseWriter, r *http.Request) {
	me := current(r)
	ext := r.PathValue("ext")
	form := &userData{Key: r.PostFormValue("key"), Points: strings.TrimSpace(r.PostFormValue("points")), Reason: r.PostFormValue("reason")}
	refuse := func(status int, msg string) { p.showUser(w, r, status, "", msg, form) }
	if err := idempotency.ValidateKey("key", form.Key); err != nil {
		form.Key = account.NewToken()
		refuse(http.StatusBadRequest, "This form has no valid submission key. Reload the page and try again.")
		return
	}
	points, err := strconv.ParseInt(form.Points, 10, 64)
	if err != nil {
		if form.Points == "" {
			refuse(http.StatusUnprocessableEntity, "Points are required: a whole number such as 50 to credit or -20 to debit.")
			return
		}
		refuse(http.StatusUnprocessableEntity, "Points must be a whole number between -1000000000 and 1000000000, such as 50 or -20.")
		return
	}
	params := adjustment.Params{ExternalUserID: ext, Points: points, Reason: form.Reason}
	if err := adjustment.Validate(&params); err != nil {
		refuse(http.StatusUnprocessableEntity, apperr.As(err).Message+".")
		return
	}
	svc := &adjustment.Service{Users: p.Users, Ledger: p.Ledger}
	res, err := idempotency.Run(r.Context(), p.DB, idempotency.Request{
		PartnerID: me.Partner.ID,
		// The same form sent twice is the same request; the same key with
		// other figures (an edited resubmission) is refused.
		Fingerprint: idempotency.Fingerprint([]byte("portal adjust"), []byte(ext), []byte(strconv.FormatInt(points, 10)), []byte(params.Reason)),
		Now:         p.now(),
		Keys:        []string{"portal-adjust:" + form.Key},
	}, func(ctx context.Context, op *idempotency.Op) (idempotency.Response, error) {
		a, err := svc.ApplyTx(ctx, op.Tx, me.Partner.ID, params)
		if err != nil {
			return idempotency.Response{}, err
		}
		// The reason stays in the ledger entry (erased with the user);
		// the audit entry names the entry and the figures.
		out := adjustOutcome{EntryID: a.Entry.ID, Points: a.Entry.Points, Balance: a.Entry.BalanceAfter}
		if _, err := p.Audit.RecordTx(ctx, op.Tx, audit.Change{Realm: audit.RealmPartner, RealmID: me.Partner.ID, Actor: me.actor(),
			Action: "user.adjust", Target: "user " + a.UserID.String(), After: out}); err != nil {
			return idempotency.Response{}, err
		}
		body, err := json.Marshal(out)
		return idempotency.Response{Status: http.StatusCreated, Body: body, UserID: &a.UserID}, err
	})
	if err != nil {
		if e := apperr.As(err); e != nil && e.Code != apperr.CodeInternal {
			refuse(apperr.Lookup(e.Code).Status, e.Message+".")
			return
		}
		p.fail(w, r, err, 0, "")
		return
	}
	var out adjustOutcome
	if err := json.Unmarshal(res.Body, &out); err != nil {
		p.fail(w, r, err, 0, "")
		return
	}
	notice := "Adjusted by " + plusMinus(out.Points) + " points (entry " + strconv.FormatInt(out.EntryID, 10) + "); the balance is now " + strconv.FormatInt(out.Balance, 10) + "."
	if res.Replayed {
		notice = "This form was already sent: " + notice + " Nothing was applied twice."
	}
	p.showUser(w, r, res.Status, notice, "", nil)
}

// plusMinus shows a signed number of points with its sign.
func plusMinus(n int64) string {
	s := strconv.FormatInt(n, 10)
	if n > 0 {
		return "+" + s
	}
	return s
}

// logoutUser refuses every consumer token of the user issued before now,
// as POST /integrations/users/{externalUserId}/logout.
func (p *Portal) logoutUser(w http.ResponseWriter, r *http.Request) {
	me := current(r)
	ext := r.PathValue("ext")
	err := p.DB.RunInTx(r.Context(), nil, func(ctx context.Context, tx bun.Tx) error {
		u, err := p.Users.Get(ctx, tx, me.Partner.ID, ext)
		if err != nil {
			return err
		}
		if err := p.Users.LogoutExternalTx(ctx, tx, me.Partner.ID, ext); err != nil {
			return err
		}
		_, err = p.Audit.RecordTx(ctx, tx, audit.Change{Realm: audit.RealmPartner, RealmID: me.Partner.ID, Actor: me.actor(),
			Action: "user.logout", Target: "user " + u.ID.String()})
		return err
	})
	if err != nil {
		p.fail(w, r, err, 0, "")
		return
	}
	p.showUser(w, r, http.StatusOK, "Every session of this user has ended: their tokens issued until now are refused.", "", nil)
}

// deleteUser anonymises (personal data removed, history kept) or erases
// (the user and their history gone) a user, as DELETE
// /integrations/users/{externalUserId}?mode=. The form must repeat the
// external id: a slip of the mouse changes nothing.
func (p *Portal) deleteUser(w http.ResponseWriter, r *http.Request) {
	me := current(r)
	ext := r.PathValue("ext")
	mode := r.PostFormValue("mode")
	confirm := r.PostFormValue("confirm")
	form := &userData{Key: account.NewToken(), Confirm: confirm}
	if mode != "anonymise" && mode != "erase" {
		p.showUser(w, r, http.StatusUnprocessableEntity, "", "Choose anonymise or erase.", form)
		return
	}
	if confirm != ext {
		p.showUser(w, r, http.StatusUnprocessableEntity, "", "To confirm, type the user's external id exactly; nothing was changed.", form)
		return
	}
	err := p.DB.RunInTx(r.Context(), nil, func(ctx context.Context, tx bun.Tx) error {
		u, err := p.Users.Get(ctx, tx, me.Partner.ID, ext)
		if err != nil {
			return err
		}
		if mode == "erase" {
			err = p.Users.EraseTx(ctx, tx, me.Partner.ID, []uuid.UUID{u.ID})
		} else {
			_, err = p.Users.AnonymiseTx(ctx, tx, me.Partner.ID, ext)
		}
		if err != nil {
			return err
		}
		// The target is the internal id: no external id or personal
		// data stays in the audit log once the user is gone.
		_, err = p.Audit.RecordTx(ctx, tx, audit.Change{Realm: audit.RealmPartner, RealmID: me.Partner.ID, Actor: me.actor(),
			Action: "user." + mode, Target: "user " + u.ID.String()})
		return err
	})
	if err != nil {
		p.fail(w, r, err, 0, "")
		return
	}
	notice := "The user was anonymised: their personal data is gone, their history stays."
	if mode == "erase" {
		notice = "The user was erased with their history."
	}
	p.render(w, r, http.StatusOK, "users", &view{Title: "Users", Nav: "users", Notice: notice, Data: usersData{}})
}
