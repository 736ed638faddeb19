package rest

import (
	"encoding/csv"
	"net/http"
	"strings"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/auth"
	"github.com/perkshq/perks/internal/report"
)

func (a *API) registerReports(rt *Router) {
	rt.Handle(http.MethodGet, "/integrations/reports/{name}", a.Partner(a.getReport))
}

// getReport answers one of the partner's reports (internal/report) for
// ?from=&to= (days in the partner's time zone, at most 366), as JSON or, on
// Accept: text/csv or ?format=csv, as CSV with a header line. Thin: the
// figures and the validation are the report package's.
func (a *API) getReport(w http.ResponseWriter, r *http.Request, p *auth.PartnerPrincipal) error {
	q := r.URL.Query()
	csvOut := strings.Contains(r.Header.Get("Accept"), "text/csv")
	switch q.Get("format") {
	case "":
	case "csv":
		csvOut = true
	case "json":
		csvOut = false
	default:
		return apperr.Field(apperr.CodeInvalidField, "format", "format must be json or csv")
	}
	name := r.PathValue("name")
	known := false
	for _, n := range report.Names {
		known = known || n == name
	}
	if !known {
		return apperr.New(apperr.CodeReportNotFound, "no report is called %q; see docs/reports.md", name)
	}
	rg, err := report.ParseRange(q.Get("from"), q.Get("to"), report.Today(a.now(), p.Partner.Timezone))
	if err != nil {
		return err
	}
	res, err := report.Run(r.Context(), a.DB.Bun, p.Partner.ID, name, rg)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	if !csvOut {
		WriteJSON(w, http.StatusOK, res)
		return nil
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`_`+res.From+`_`+res.To+`.csv"`)
	w.WriteHeader(http.StatusOK)
	cw := csv.NewWriter(w)
	for _, rec := range res.Table() {
		_ = cw.Write(rec)
	}
	cw.Flush()
	return nil
}
