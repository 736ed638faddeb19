package portal

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/bulk"
	"github.com/perkshq/perks/internal/catalog"
)

// Gifts: the list, the create/edit form (PUT /integrations/gifts/{sku}),
// retire (DELETE /integrations/gifts/{sku}), and the CSV code upload, a
// codes bulk job (POST /integrations/gifts/{sku}/codes?async=true) whose
// progress page reloads itself while it runs.

const (
	noticeGiftSaved   = "Gift saved."
	noticeGiftRetired = "Gift retired: it left the catalog; vouchers already claimed stay valid."
)

type giftsData struct {
	Gifts []catalog.Gift
	Loc   *time.Location
	Now   time.Time
}

func (p *Portal) cmsNow() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

func (p *Portal) giftsPage(w http.ResponseWriter, r *http.Request) {
	me := current(r)
	gifts, err := p.CMS.Catalog.Gifts(r.Context(), p.DB, me.Partner.ID, true)
	if err != nil {
		p.fail(w, r, err, 0, "")
		return
	}
	p.render(w, r, http.StatusOK, "gifts", &view{Title: "Gifts", Nav: "catalog", Notice: savedNotice(r, noticeGiftSaved, noticeGiftRetired),
		Data: giftsData{Gifts: gifts, Loc: me.Partner.Location(), Now: p.cmsNow()}})
}

type giftData struct {
	Form    *form
	Gift    *catalog.Gift // nil for a new gift
	Editing bool          // Gift != nil
	Rows    []int
	Loc     *time.Location
	Uploads []bulk.Job
	// Upload is the code upload form's refusal.
	Upload *form
}

func giftValues(g *catalog.Gift, merchants []string, loc *time.Location) (url.Values, int) {
	v := url.Values{}
	v.Set("sku", g.SKU)
	v.Set("title", g.Title)
	v.Set("description", g.Description)
	v.Set("imageUrl", g.ImageURL)
	v.Set("category", g.Category)
	v.Set("costPoints", strconv.FormatInt(g.CostPoints, 10))
	v.Set("stock", itoa(g.StockTotal))
	v.Set("perUserLimit", itoa(g.PerUserLimit))
	v.Set("visibleFrom", timeValue(g.VisibleFrom, loc))
	v.Set("visibleUntil", timeValue(g.VisibleUntil, loc))
	v.Set("claimableFrom", timeValue(g.ClaimableFrom, loc))
	v.Set("claimableUntil", timeValue(g.ClaimableUntil, loc))
	v.Set("countries", strings.Join(g.Countries, ", "))
	v.Set("codeSource", g.CodeSource)
	if g.CodePattern != nil {
		v.Set("codePattern", *g.CodePattern)
	}
	v.Set("voucherLifetimeSeconds", itoa(g.VoucherLifetimeSeconds))
	v.Set("refundOnExpiry", boolValue(g.RefundOnExpiry))
	v.Set("merchants", strings.Join(merchants, ", "))
	v.Set("position", strconv.Itoa(g.Position))
	if g.MinTier != nil {
		v.Set("minTier", *g.MinTier)
	}
	return v, translationRows(v, g.Translations, "title", "description")
}

// giftPage shows one gift's form (GET /portal/gifts/new: an empty one).
func (p *Portal) giftPage(w http.ResponseWriter, r *http.Request) {
	p.giftForm(w, r, http.StatusOK, r.PathValue("sku"), nil, nil)
}

// giftForm renders the form of sku ("" for a new gift): the stored values,
// or posted ones with their refusal.
func (p *Portal) giftForm(w http.ResponseWriter, r *http.Request, status int, sku string, posted *form, upload *form) {
	me := current(r)
	loc := me.Partner.Location()
	d := giftData{Loc: loc, Upload: upload}
	if sku != "" {
		g, err := p.CMS.Catalog.GiftBySKU(r.Context(), p.DB, me.Partner.ID, sku)
		if err != nil {
			p.fail(w, r, err, 0, "")
			return
		}
		d.Gift, d.Editing = g, true
		ms, err := p.CMS.Catalog.MerchantsOf(r.Context(), p.DB, me.Partner.ID, []uuid.UUID{g.ID})
		if err != nil {
			p.fail(w, r, err, 0, "")
			return
		}
		var codes []string
		for _, m := range ms[g.ID] {
			codes = append(codes, m.Code)
		}
		if g.CodeSource == catalog.SourcePool {
			if d.Uploads, err = p.uploadsOf(r.Context(), me, g.SKU); err != nil {
				p.fail(w, r, err, 0, "")
				return
			}
		}
		vals, rows := giftValues(g, codes, loc)
		if posted == nil {
			posted = &form{Values: vals}
		}
		d.Rows = seq(max(rows, rowsOf(posted.Values)))
	} else {
		if posted == nil {
			posted = &form{Values: url.Values{"codeSource": {catalog.SourceNone}}}
		}
		d.Rows = seq(rowsOf(posted.Values) + 1)
	}
	d.Form = posted
	title := "New gift"
	if d.Gift != nil {
		title = "Gift " + d.Gift.SKU
	}
	var notice string
	if d.Gift != nil {
		notice = savedNotice(r, noticeGiftSaved)
	}
	errMsg := ""
	if posted.Err != nil {
		errMsg = "The gift was not saved: " + posted.Err.Message
	}
	if upload != nil && upload.Err != nil {
		errMsg = "The codes were not uploaded: " + upload.Err.Message
	}
	p.render(w, r, status, "gift", &view{Title: title, Nav: "catalog", Notice: notice, Error: errMsg, Data: d})
}

// saveGift creates or replaces a gift (catalog.PutGiftTx, as PUT
// /integrations/gifts/{sku}). Replace means replace, as over REST: the
// form posts every field.
func (p *Portal) saveGift(w http.ResponseWriter, r *http.Request) {
	me := current(r)
	ps := &parsed{v: r.PostForm, loc: me.Partner.Location()}
	sku := ps.str("sku")
	existing := r.PostFormValue("existing") == "true"
	in := catalog.GiftInput{
		Title: ps.v.Get("title"), Description: strings.ReplaceAll(ps.v.Get("description"), "\r\n", "\n"), ImageURL: ps.str("imageUrl"),
		Category: ps.str("category"), CodeSource: ps.str("codeSource"), CodePattern: ps.str("codePattern"),
		RefundOnExpiry: ps.bool("refundOnExpiry"), Countries: ps.list("countries"), Merchants: ps.list("merchants"),
		MinTier: ps.optStr("minTier"),
	}
	if c := ps.int64("costPoints", true); c != nil {
		in.CostPoints = *c
	}
	in.Stock = ps.int("stock")
	in.PerUserLimit = ps.int("perUserLimit")
	in.VoucherLifetimeSeconds = ps.int("voucherLifetimeSeconds")
	if pos := ps.int("position"); pos != nil {
		in.Position = *pos
	}
	in.VisibleFrom, in.VisibleUntil = ps.time("visibleFrom"), ps.time("visibleUntil")
	in.ClaimableFrom, in.ClaimableUntil = ps.time("claimableFrom"), ps.time("claimableUntil")
	in.Translations = ps.translations("title", "description")
	err := ps.err
	if err == nil {
		err = p.audited(r.Context(), me, "gift.put", "gift "+sku, func(ctx context.Context, tx bun.Tx) (any, any, error) {
			var before any
			old, err := p.CMS.Catalog.GiftBySKU(ctx, tx, me.Partner.ID, sku)
			switch {
			case err == nil:
				before = old
				if !existing {
					// A new gift's SKU must not silently replace another.
					return nil, nil, apperr.Field(apperr.CodeInvalidField, "sku", "a gift with the SKU %s exists already: edit it from the list", sku)
				}
			case !apperr.Is(err, apperr.CodeGiftNotFound):
				return nil, nil, err
			}
			g, _, err := p.CMS.Catalog.PutGiftTx(ctx, tx, me.Partner.ID, sku, in)
			return before, g, err
		})
	}
	if err != nil {
		if e := refusal(err); e != nil {
			formSKU := ""
			if existing {
				formSKU = sku
			}
			p.giftForm(w, r, apperr.Lookup(e.Code).Status, formSKU, &form{Values: r.PostForm, Err: e}, nil)
			return
		}
		p.fail(w, r, err, 0, "")
		return
	}
	changed(w, r, Path+"/gifts/"+url.PathEscape(sku), noticeGiftSaved)
}

// retireGift is catalog.Retire (DELETE /integrations/gifts/{sku}).
func (p *Portal) retireGift(w http.ResponseWriter, r *http.Request) {
	me := current(r)
	sku := r.PathValue("sku")
	err := p.audited(r.Context(), me, "gift.retire", "gift "+sku, func(ctx context.Context, tx bun.Tx) (any, any, error) {
		if err := catalog.ValidateSKU("sku", sku); err != nil {
			return nil, nil, apperr.New(apperr.CodeGiftNotFound, "gift not found")
		}
		old, err := p.CMS.Catalog.GiftBySKU(ctx, tx, me.Partner.ID, sku)
		if err != nil {
			return nil, nil, err
		}
		if err := p.CMS.Catalog.Retire(ctx, tx, me.Partner.ID, sku); err != nil {
			return nil, nil, err
		}
		return old, map[string]any{"sku": sku, "retired": true}, nil
	})
	if err != nil {
		p.fail(w, r, err, 0, "")
		return
	}
	changed(w, r, Path+"/gifts", noticeGiftRetired)
}

// uploadCodes reads the CSV file and enqueues a codes job
// (bulk.EnqueueCodesTx, as POST /integrations/gifts/{sku}/codes?async=true):
// a bad line refuses the whole file.
func (p *Portal) uploadCodes(w http.ResponseWriter, r *http.Request) {
	me := current(r)
	sku := r.PathValue("sku")
	var job *bulk.Job
	err := func() error {
		f, _, err := r.FormFile("file")
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return apperr.Field(apperr.CodePayloadTooLarge, "file", "the file is larger than %d MiB: split it", MaxUploadBytes>>20)
			}
			return apperr.Field(apperr.CodeMissingField, "file", "choose a CSV file of codes, one per line")
		}
		defer f.Close()
		codes, err := catalog.ParseCodesCSV(f)
		if err != nil {
			if e := apperr.As(err); e != nil {
				e.Field = "file"
			}
			return err
		}
		return p.audited(r.Context(), me, "gift.codes.upload", "gift "+sku, func(ctx context.Context, tx bun.Tx) (any, any, error) {
			var err error
			job, err = p.CMS.Bulk.EnqueueCodesTx(ctx, tx, me.Partner.ID, sku, codes)
			if e := apperr.As(err); e != nil && e.Field == "codes" {
				e.Field = "file"
			}
			if err != nil {
				return nil, nil, err
			}
			// The codes themselves are bearer values: never in the log.
			return nil, map[string]any{"jobId": job.ID, "codes": len(codes)}, nil
		})
	}()
	if err != nil {
		if e := refusal(err); e != nil && e.Code != apperr.CodeGiftNotFound {
			p.giftForm(w, r, apperr.Lookup(e.Code).Status, sku, nil, &form{Err: e})
			return
		}
		p.fail(w, r, err, 0, "")
		return
	}
	securityHeaders(w.Header())
	http.Redirect(w, r, Path+"/gifts/"+url.PathEscape(sku)+"/uploads/"+job.ID.String(), http.StatusSeeOther)
}

// uploadsOf lists the gift's recent code uploads.
func (p *Portal) uploadsOf(ctx context.Context, me *signedIn, sku string) ([]bulk.Job, error) {
	jobs, err := p.CMS.Bulk.List(ctx, p.DB, me.Partner.ID, 200)
	if err != nil {
		return nil, err
	}
	var out []bulk.Job
	for _, j := range jobs {
		if s, _ := j.Params["sku"].(string); j.Kind == bulk.KindCodes && s == sku && len(out) < 5 {
			out = append(out, j)
		}
	}
	return out, nil
}

type uploadData struct {
	SKU    string
	Job    *bulk.Job
	Errors []bulk.Item
}

// uploadPage shows a code upload's progress (GET /integrations/jobs/{id});
// while it runs, /portal/assets/progress.js reloads it every second.
func (p *Portal) uploadPage(w http.ResponseWriter, r *http.Request) {
	me := current(r)
	id, err := parseID(r)
	if err != nil {
		p.fail(w, r, err, 0, "")
		return
	}
	j, err := p.CMS.Bulk.Get(r.Context(), p.DB, me.Partner.ID, id)
	if err == nil && j.Kind != bulk.KindCodes {
		err = apperr.New(apperr.CodeNotFound, "upload not found")
	}
	if err != nil {
		p.fail(w, r, err, 0, "")
		return
	}
	errs, err := p.CMS.Bulk.Errors(r.Context(), p.DB, me.Partner.ID, id, -1, 20)
	if err != nil {
		p.fail(w, r, err, 0, "")
		return
	}
	sku, _ := j.Params["sku"].(string)
	p.render(w, r, http.StatusOK, "upload", &view{Title: "Code upload for " + sku, Nav: "catalog", Data: uploadData{SKU: sku, Job: j, Errors: errs}})
}
