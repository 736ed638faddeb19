package portal

import (
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/perkshq/perks/internal/account"
	"github.com/perkshq/perks/internal/audit"
	"github.com/perkshq/perks/internal/bulk"
	"github.com/perkshq/perks/internal/export"
)

// The Exports & jobs page: the incremental export of users as CSV, streamed
// by the export service that answers GET /integrations/exports/users, with
// its watermark (the cursor the next download starts from) remembered per
// download so the next one can take only the changes since; and the
// partner's bulk jobs (multistore, multidelete) with their progress, the
// data of GET /integrations/jobs and /integrations/jobs/{id}. A running
// job's page refreshes itself with <meta http-equiv="refresh">: no script.
//
// The export carries every user's personal data, so downloading it needs
// the `users` permission; every role may watch jobs.

func init() { addPages("exports", "jobs", "job") }

func (p *Portal) registerExports(h func(string, http.HandlerFunc)) {
	h("GET "+Path+"/exports", p.authed(account.PermView, p.exportsPage))
	h("GET "+Path+"/exports/users.csv", p.authed(account.PermUsers, p.exportCSV))
	h("GET "+Path+"/jobs", p.authed(account.PermView, p.jobsPage))
	h("GET "+Path+"/jobs/{id}", p.authed(account.PermView, p.jobPage))
}

type exportsData struct {
	Downloads []export.Download
}

func (p *Portal) exportsPage(w http.ResponseWriter, r *http.Request) {
	ds, err := p.Export.Downloads(r.Context(), p.DB, current(r).Partner.ID, 10)
	if err != nil {
		p.fail(w, r, err, 0, "")
		return
	}
	p.render(w, r, http.StatusOK, "exports", &view{Title: "Exports & jobs", Nav: "exports", Data: exportsData{Downloads: ds}})
}

// csvWriter sends the headers when the export begins and remembers the
// page's next cursor.
type csvWriter struct {
	w     http.ResponseWriter
	svc   *export.Service
	slug  string
	next  export.Page
	begun bool
}

func (c *csvWriter) Begin(pg export.Page) error {
	c.next, c.begun = pg, true
	h := c.w.Header()
	securityHeaders(h)
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="`+c.slug+`-users.csv"`)
	h.Set("X-Next-Cursor", c.svc.Encode(pg.Next))
	h.Set("X-Has-More", strconv.FormatBool(pg.HasMore))
	c.w.WriteHeader(http.StatusOK)
	return nil
}

func (c *csvWriter) Write(b []byte) (int, error) { return c.w.Write(b) }

// exportCSV streams the users changed since ?cursor= (everything without
// one), at most ?limit= of them, as CSV ending with its "#cursor" line;
// once the last row is sent, the download and its next cursor are
// recorded (export_downloads) and audited.
func (p *Portal) exportCSV(w http.ResponseWriter, r *http.Request) {
	me := current(r)
	q := r.URL.Query()
	cur := export.Cursor{PartnerID: me.Partner.ID}
	var from *string
	if v := strings.TrimSpace(q.Get("cursor")); v != "" {
		c, err := p.Export.Decode(me.Partner.ID, v)
		if err != nil {
			p.fail(w, r, nil, http.StatusBadRequest, "This cursor is not one of your exports: paste it from a download's last line or from the list of downloads.")
			return
		}
		cur, from = c, &v
	}
	limit := 0
	if v := strings.TrimSpace(q.Get("limit")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1_000_000 {
			p.fail(w, r, nil, http.StatusBadRequest, "The number of users must be a whole number from 1 to 1000000, or empty for all.")
			return
		}
		limit = n
	}
	cw := &csvWriter{w: w, svc: p.Export, slug: me.Partner.Slug}
	n, err := p.Export.Stream(r.Context(), cur, limit, export.CSV, cw)
	if err != nil && !cw.begun {
		p.fail(w, r, err, 0, "")
		return
	}
	if err != nil {
		// The headers are gone: cut the body so the browser reports a
		// failed download rather than a complete file without its cursor.
		p.Log.ErrorContext(r.Context(), "portal: export stream failed", "error", err.Error())
		panic(http.ErrAbortHandler)
	}
	acc := me.Account.ID
	d := &export.Download{PartnerID: me.Partner.ID, AccountID: &acc, FromCursor: from, NextCursor: p.Export.Encode(cw.next.Next), HasMore: cw.next.HasMore, Rows: n}
	ctx := r.Context()
	if err := p.Export.RecordDownload(ctx, p.DB, d); err != nil {
		p.Log.ErrorContext(ctx, "portal: recording an export download", "error", err.Error())
		return
	}
	if _, err := p.Audit.RecordTx(ctx, p.DB, audit.Change{Realm: audit.RealmPartner, RealmID: me.Partner.ID, Actor: me.actor(),
		Action: "export.users", Target: "export download " + strconv.FormatInt(d.ID, 10), After: map[string]any{"rows": n, "hasMore": d.HasMore, "incremental": from != nil}}); err != nil {
		p.Log.ErrorContext(ctx, "portal: auditing an export download", "error", err.Error())
	}
}

type jobsData struct {
	Jobs []bulk.Job
}

// jobsPageSize is how many recent jobs the list shows.
const jobsPageSize = 50

func (p *Portal) jobsPage(w http.ResponseWriter, r *http.Request) {
	js, err := p.Bulk.List(r.Context(), p.DB, current(r).Partner.ID, jobsPageSize)
	if err != nil {
		p.fail(w, r, err, 0, "")
		return
	}
	p.render(w, r, http.StatusOK, "jobs", &view{Title: "Bulk jobs", Nav: "exports", Data: jobsData{Jobs: js}})
}

type jobData struct {
	Job     *bulk.Job
	Items   []bulk.Item
	Errors  bool
	After   int
	Next    *int
	Percent int
	// Refresh is the reload delay in seconds while the job runs (0:
	// finished, no refresh).
	Refresh int
}

// jobItemsPage is how many item results a job page shows.
const jobItemsPage = 100

func (p *Portal) jobPage(w http.ResponseWriter, r *http.Request) {
	me := current(r)
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		p.fail(w, r, nil, http.StatusNotFound, "Not found.")
		return
	}
	q := r.URL.Query()
	d := jobData{After: -1, Errors: q.Get("only") == "errors"}
	if v := q.Get("only"); v != "" && v != "errors" {
		p.fail(w, r, nil, http.StatusBadRequest, "The only filter takes one value: errors.")
		return
	}
	if v := q.Get("after"); v != "" {
		if d.After, err = strconv.Atoi(v); err != nil || d.After < -1 || d.After > math.MaxInt32 {
			p.fail(w, r, nil, http.StatusBadRequest, "after must be an item index taken from a Next link.")
			return
		}
	}
	if d.Job, err = p.Bulk.Get(r.Context(), p.DB, me.Partner.ID, id); err != nil {
		p.fail(w, r, err, 0, "")
		return
	}
	if d.Errors {
		d.Items, err = p.Bulk.Errors(r.Context(), p.DB, me.Partner.ID, id, d.After, jobItemsPage+1)
	} else {
		d.Items, err = p.Bulk.Results(r.Context(), p.DB, me.Partner.ID, id, d.After, jobItemsPage+1)
	}
	if err != nil {
		p.fail(w, r, err, 0, "")
		return
	}
	if len(d.Items) > jobItemsPage {
		d.Items = d.Items[:jobItemsPage]
		next := d.Items[jobItemsPage-1].Position
		d.Next = &next
	}
	if d.Job.Total > 0 {
		d.Percent = (d.Job.Done + d.Job.Failed) * 100 / d.Job.Total
	}
	if !d.Job.Finished() {
		d.Refresh = 2
	}
	p.render(w, r, http.StatusOK, "job", &view{Title: "Job " + d.Job.Kind, Nav: "exports", Data: d})
}
