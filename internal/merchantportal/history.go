package merchantportal

import (
	"net/http"
	"net/url"
	"time"

	"github.com/google/uuid"

	"github.com/perkshq/perks/internal/account"
	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/portal"
	"github.com/perkshq/perks/internal/voucher"
)

// The redemption history: who redeemed what, when, for which partner,
// with filters, CSV export and daily totals. The admin sees every
// operator's redemptions (and the server-to-server ones); an operator only
// their own, whatever the query says.

type historyFilter struct {
	From, To, Operator, Partner string
}

type historyData struct {
	Filter    historyFilter
	Rows      []voucher.Redemption
	Totals    []voucher.DailyTotal
	Timezone  string
	Operators []account.Account
	All       bool
	CSV       string
	More      bool
}

const historyPageSize = 200

// seesAll: the merchant admin reads every redemption of the merchant.
func seesAll(a *account.Account) bool { return a.Can(account.PermTeam) }

// historyParams reads the filters into voucher.HistoryParams. Dates are
// days in the time zone of the merchant's first partner (UTC without one).
func (p *Portal) historyParams(r *http.Request) (voucher.HistoryParams, historyFilter, string, error) {
	me := current(r)
	q := r.URL.Query()
	f := historyFilter{From: q.Get("from"), To: q.Get("to"), Operator: q.Get("operator"), Partner: q.Get("partner")}
	hp := voucher.HistoryParams{MerchantID: me.MerchantID()}
	tz := "UTC"
	if len(me.Served) > 0 && me.Served[0].Timezone != "" {
		tz = me.Served[0].Timezone
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		loc, tz = time.UTC, "UTC"
	}
	day := func(field, s string) (time.Time, error) {
		if s == "" {
			return time.Time{}, nil
		}
		t, err := time.ParseInLocation("2006-01-02", s, loc)
		if err != nil {
			return time.Time{}, apperr.Field(apperr.CodeInvalidField, field, "%s must be a date such as 2026-11-25", field)
		}
		return t, nil
	}
	if hp.From, err = day("from", f.From); err != nil {
		return hp, f, tz, err
	}
	if hp.To, err = day("to", f.To); err != nil {
		return hp, f, tz, err
	}
	if !hp.To.IsZero() {
		hp.To = hp.To.AddDate(0, 0, 1) // "to" is inclusive
	}
	if f.Partner != "" {
		id, err := uuid.Parse(f.Partner)
		if err != nil || me.served(id) == nil {
			return hp, f, tz, apperr.Field(apperr.CodeInvalidField, "partner", "choose a program from the list")
		}
		hp.PartnerID = id
	}
	switch {
	case !seesAll(me.Account):
		hp.OperatorID, f.Operator = me.Account.ID, ""
	case f.Operator == "api":
		hp.ServerOnly = true
	case f.Operator != "":
		id, err := uuid.Parse(f.Operator)
		if err != nil {
			return hp, f, tz, apperr.Field(apperr.CodeInvalidField, "operator", "choose an operator from the list")
		}
		hp.OperatorID = id
	}
	return hp, f, tz, nil
}

func (p *Portal) history(w http.ResponseWriter, r *http.Request) {
	me := current(r)
	hp, f, tz, perr := p.historyParams(r)
	d := &historyData{Filter: f, Timezone: tz, All: seesAll(me.Account)}
	var err error
	if d.All {
		if d.Operators, err = p.Accounts.List(r.Context(), p.DB, account.RealmMerchant, me.MerchantID()); err != nil {
			p.fail(w, r, err, 0, "")
			return
		}
	}
	if perr != nil {
		p.render(w, r, http.StatusUnprocessableEntity, "history", &view{Title: "Redemptions", Nav: "history", Error: apperr.As(perr).Message, Data: d})
		return
	}
	hp.Limit = historyPageSize + 1
	if d.Rows, err = p.Vouchers.History(r.Context(), p.DB, hp); err != nil {
		p.fail(w, r, err, 0, "")
		return
	}
	if len(d.Rows) > historyPageSize {
		d.Rows, d.More = d.Rows[:historyPageSize], true
	}
	if d.Totals, err = p.Vouchers.DailyTotals(r.Context(), p.DB, hp, tz); err != nil {
		p.fail(w, r, err, 0, "")
		return
	}
	qs := url.Values{}
	for k, v := range map[string]string{"from": f.From, "to": f.To, "operator": f.Operator, "partner": f.Partner} {
		if v != "" {
			qs.Set(k, v)
		}
	}
	d.CSV = Path + "/history.csv"
	if len(qs) > 0 {
		d.CSV += "?" + qs.Encode()
	}
	p.render(w, r, http.StatusOK, "history", &view{Title: "Redemptions", Nav: "history", Data: d})
}

// historyCSVMax caps one export; narrow the dates for more.
const historyCSVMax = 10000

func (p *Portal) historyCSV(w http.ResponseWriter, r *http.Request) {
	hp, _, _, err := p.historyParams(r)
	if err != nil {
		p.fail(w, r, err, 0, "")
		return
	}
	hp.Limit = historyCSVMax
	rows, err := p.Vouchers.History(r.Context(), p.DB, hp)
	if err != nil {
		p.fail(w, r, err, 0, "")
		return
	}
	portal.SecurityHeaders(w.Header())
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="redemptions.csv"`)
	if err := voucher.WriteHistoryCSV(w, rows); err != nil {
		p.Log.ErrorContext(r.Context(), "merchant portal: history export", "error", err.Error())
	}
}
