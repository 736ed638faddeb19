package console

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/perkshq/perks/internal/audit"
	"github.com/perkshq/perks/internal/report"
)

// --- health: webhook failure rates per partner, River UI ---

type healthData struct {
	From, To string
	Partners []report.PartnerWebhooks
}

// HealthDays is the health page's period: the last 7 days.
const HealthDays = 7

func (c *Console) health(w http.ResponseWriter, r *http.Request) {
	today := report.Today(c.now(), "UTC")
	rg := report.Range{From: today.AddDate(0, 0, -(HealthDays - 1)), To: today}
	ps, err := report.WebhookFailures(r.Context(), c.DB, rg)
	if err != nil {
		c.fail(w, r, err, 0, "")
		return
	}
	c.render(w, r, http.StatusOK, "health", &view{Title: "Health", Nav: "health",
		Data: healthData{From: rg.From.Format("2006-01-02"), To: rg.To.Format("2006-01-02"), Partners: ps}})
}

// --- the audit log across partners ---

type auditData struct {
	Filter   auditFilter
	Entries  []audit.Entry
	Next     int64
	Query    string
	Partners map[string]string // realm id -> partner slug, for the table
}

type auditFilter struct{ Realm, Partner, Action, Actor, From, To string }

const auditPageSize = 50

// auditSearch reads the filter of the page and the CSV export (the same
// query string): bad dates or an unknown partner are a clear 4xx.
func (c *Console) auditSearch(r *http.Request, limit int) (auditFilter, []audit.Entry, map[string]string, int, string) {
	q := r.URL.Query()
	f := auditFilter{Realm: q.Get("realm"), Partner: strings.TrimSpace(q.Get("partner")), Action: strings.TrimSpace(q.Get("action")),
		Actor: strings.TrimSpace(q.Get("actor")), From: q.Get("from"), To: q.Get("to")}
	p := audit.SearchParams{Action: f.Action, Actor: f.Actor, Limit: limit}
	switch f.Realm {
	case "", audit.RealmPartner, audit.RealmMerchant, audit.RealmPlatform:
		p.Realm = f.Realm
	default:
		return f, nil, nil, http.StatusBadRequest, "Choose the realm from the list."
	}
	day := func(v string) (time.Time, bool) {
		if v == "" {
			return time.Time{}, true
		}
		t, err := time.Parse("2006-01-02", v)
		return t, err == nil
	}
	var ok bool
	if p.From, ok = day(f.From); !ok {
		return f, nil, nil, http.StatusBadRequest, "Enter the start date as YYYY-MM-DD."
	}
	if p.To, ok = day(f.To); !ok {
		return f, nil, nil, http.StatusBadRequest, "Enter the end date as YYYY-MM-DD."
	}
	if !p.To.IsZero() {
		p.To = p.To.AddDate(0, 0, 1) // the end day is included
	}
	if f.Partner != "" {
		pt, err := c.Partners.BySlug(r.Context(), c.DB, f.Partner)
		if err != nil {
			return f, nil, nil, http.StatusBadRequest, "No partner has the slug " + strconv.Quote(f.Partner) + "."
		}
		p.RealmID = pt.ID
		if p.Realm == "" {
			p.Realm = audit.RealmPartner
		}
	}
	p.BeforeID, _ = strconv.ParseInt(q.Get("before"), 10, 64)
	entries, err := c.Audit.Search(r.Context(), c.DB, p)
	if err != nil {
		return f, nil, nil, 0, err.Error()
	}
	ps, err := c.Partners.List(r.Context(), c.DB)
	if err != nil {
		return f, nil, nil, 0, err.Error()
	}
	slugs := make(map[string]string, len(ps))
	for _, pt := range ps {
		slugs[pt.ID.String()] = pt.Slug
	}
	return f, entries, slugs, http.StatusOK, ""
}

func (c *Console) auditPage(w http.ResponseWriter, r *http.Request) {
	f, entries, slugs, status, msg := c.auditSearch(r, auditPageSize)
	if status == 0 {
		c.Log.ErrorContext(r.Context(), "console: audit search", "error", msg)
		c.fail(w, r, nil, http.StatusInternalServerError, "Something went wrong on our side. Try again later.")
		return
	}
	d := auditData{Filter: f, Entries: entries, Partners: slugs}
	q := r.URL.Query()
	q.Del("before")
	d.Query = q.Encode()
	if len(entries) == auditPageSize {
		d.Next = entries[len(entries)-1].ID
	}
	c.render(w, r, status, "audit", &view{Title: "Audit log", Nav: "audit", Error: msg, Data: d})
}

// auditCSVMax caps one export; page with ?before= for more.
const auditCSVMax = 10000

func (c *Console) auditCSV(w http.ResponseWriter, r *http.Request) {
	_, entries, _, status, msg := c.auditSearch(r, auditCSVMax)
	if status != http.StatusOK {
		if status == 0 {
			c.Log.ErrorContext(r.Context(), "console: audit export", "error", msg)
			status, msg = http.StatusInternalServerError, "Something went wrong on our side. Try again later."
		}
		c.fail(w, r, nil, status, msg)
		return
	}
	securityHeaders(w.Header())
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="perks-audit.csv"`)
	if err := audit.WriteSearchCSV(w, entries); err != nil {
		c.Log.ErrorContext(r.Context(), "console: audit export", "error", err.Error())
	}
}
