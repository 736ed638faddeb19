package merchantportal

import (
	"net/http"
	"strconv"

	"github.com/perkshq/perks/internal/account"
	"github.com/perkshq/perks/internal/audit"
	"github.com/perkshq/perks/internal/portal"
)

// The merchant's audit log (admin, PermAudit): invitations, activations,
// role changes, credentials, redemptions at the till, attachments to
// partners; never a secret (internal/audit redacts).

type auditData struct {
	Entries []audit.Entry
	Next    int64
}

const auditPageSize = 50

func (p *Portal) auditPage(w http.ResponseWriter, r *http.Request) {
	before, _ := strconv.ParseInt(r.URL.Query().Get("before"), 10, 64)
	entries, err := p.Audit.List(r.Context(), p.DB, audit.ListParams{Realm: account.RealmMerchant, RealmID: current(r).MerchantID(), BeforeID: before, Limit: auditPageSize})
	if err != nil {
		p.fail(w, r, err, 0, "")
		return
	}
	d := auditData{Entries: entries}
	if len(entries) == auditPageSize {
		d.Next = entries[len(entries)-1].ID
	}
	p.render(w, r, http.StatusOK, "audit", &view{Title: "Audit log", Nav: "audit", Data: d})
}

func (p *Portal) auditCSV(w http.ResponseWriter, r *http.Request) {
	before, _ := strconv.ParseInt(r.URL.Query().Get("before"), 10, 64)
	entries, err := p.Audit.List(r.Context(), p.DB, audit.ListParams{Realm: account.RealmMerchant, RealmID: current(r).MerchantID(), BeforeID: before, Limit: 10000})
	if err != nil {
		p.fail(w, r, err, 0, "")
		return
	}
	portal.SecurityHeaders(w.Header())
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="merchant-audit.csv"`)
	if err := audit.WriteCSV(w, entries); err != nil {
		p.Log.ErrorContext(r.Context(), "merchant portal: audit export", "error", err.Error())
	}
}
