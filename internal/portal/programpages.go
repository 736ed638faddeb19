package portal

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/campaign"
	"github.com/perkshq/perks/internal/content"
	"github.com/perkshq/perks/internal/earning"
	"github.com/perkshq/perks/internal/program"
	"github.com/perkshq/perks/internal/referral"
	"github.com/perkshq/perks/internal/tier"
)

// Earning rules, ads, program settings and campaigns: each page lists what
// exists and has one form that creates or replaces an item by its code
// (prefilled by ?edit=code), as the REST PUT of the same item does.

const noticeSaved = "Saved."

// listPage is the data of the list-and-form pages.
type listPage[T any] struct {
	Items []T
	Form  *form
	Rows  []int
	Loc   *time.Location
	// Editing is the code of the item the form edits ("": a new one).
	Editing string
}

func postedError(f *form) string {
	if f != nil && f.Err != nil {
		return "Not saved: " + f.Err.Message
	}
	return ""
}

// --- earning rules (PUT/DELETE /integrations/earning-rules/{code}) ---

func ruleValues(r *earning.Rule, loc *time.Location) url.Values {
	v := url.Values{}
	v.Set("code", r.Code)
	v.Set("name", r.Name)
	v.Set("description", r.Description)
	v.Set("points", strconv.FormatInt(r.Points, 10))
	v.Set("variablePoints", boolValue(r.VariablePoints))
	v.Set("maxPoints", i64toa(r.MaxPoints))
	v.Set("clientTriggerable", boolValue(r.ClientTriggerable))
	v.Set("lifetimeCap", itoa(r.LifetimeCap))
	v.Set("dailyCap", itoa(r.DailyCap))
	v.Set("cooldownSeconds", itoa(r.CooldownSeconds))
	v.Set("activeFrom", timeValue(r.ActiveFrom, loc))
	v.Set("activeUntil", timeValue(r.ActiveUntil, loc))
	v.Set("enabled", boolValue(r.Enabled))
	v.Set("pendingDays", itoa(r.PendingDays))
	v.Set("expiryDays", itoa(r.ExpiryDays))
	v.Set("pointsPerAmount", i64toa(r.PointsPerAmount))
	return v
}

func (p *Portal) rulesPage(w http.ResponseWriter, r *http.Request) {
	p.rulesView(w, r, http.StatusOK, nil)
}

func (p *Portal) rulesView(w http.ResponseWriter, r *http.Request, status int, posted *form) {
	me := current(r)
	loc := me.Partner.Location()
	rules, err := p.CMS.Earning.Rules(r.Context(), p.DB, me.Partner.ID, true)
	if err != nil {
		p.fail(w, r, err, 0, "")
		return
	}
	d := listPage[earning.Rule]{Items: rules, Loc: loc, Form: posted}
	if posted == nil {
		d.Form = &form{Values: url.Values{"enabled": {"on"}}}
		if code := r.URL.Query().Get("edit"); code != "" {
			for i := range rules {
				if rules[i].Code == code {
					d.Form.Values, d.Editing = ruleValues(&rules[i], loc), code
				}
			}
		}
	}
	p.render(w, r, status, "rules", &view{Title: "Earning rules", Nav: "catalog", Notice: savedNotice(r, noticeSaved), Error: postedError(posted), Data: d})
}

// saveRule is earning.PutRule (PUT /integrations/earning-rules/{code}).
func (p *Portal) saveRule(w http.ResponseWriter, r *http.Request) {
	me := current(r)
	ps := &parsed{v: r.PostForm, loc: me.Partner.Location()}
	code := ps.str("code")
	in := earning.RuleInput{Name: ps.str("name"), Description: strings.ReplaceAll(ps.v.Get("description"), "\r\n", "\n"),
		VariablePoints: ps.bool("variablePoints"), ClientTriggerable: ps.bool("clientTriggerable"), Enabled: ps.bool("enabled")}
	if n := ps.int64("points", true); n != nil {
		in.Points = *n
	}
	in.MaxPoints, in.PointsPerAmount = ps.int64("maxPoints", false), ps.int64("pointsPerAmount", false)
	in.LifetimeCap, in.DailyCap, in.CooldownSeconds = ps.int("lifetimeCap"), ps.int("dailyCap"), ps.int("cooldownSeconds")
	in.PendingDays, in.ExpiryDays = ps.int("pendingDays"), ps.int("expiryDays")
	in.ActiveFrom, in.ActiveUntil = ps.time("activeFrom"), ps.time("activeUntil")
	err := ps.err
	if err == nil {
		err = earning.ValidateCode("code", code)
	}
	if err == nil {
		err = p.audited(r.Context(), me, "rule.put", "earning rule "+code, func(ctx context.Context, tx bun.Tx) (any, any, error) {
			var before any
			if old, err := p.CMS.Earning.Rule(ctx, tx, me.Partner.ID, code); err == nil {
				before = old
			}
			rule, _, err := p.CMS.Earning.PutRule(ctx, tx, me.Partner.ID, code, in)
			return before, rule, err
		})
	}
	if e := refusal(err); e != nil {
		p.rulesView(w, r, apperr.Lookup(e.Code).Status, &form{Values: r.PostForm, Err: e})
		return
	}
	if err != nil {
		p.fail(w, r, err, 0, "")
		return
	}
	changed(w, r, Path+"/rules", noticeSaved)
}

// disableRule is earning.DisableRule (DELETE /integrations/earning-rules/{code}).
func (p *Portal) disableRule(w http.ResponseWriter, r *http.Request) {
	me := current(r)
	code := r.PathValue("code")
	err := p.audited(r.Context(), me, "rule.disable", "earning rule "+code, func(ctx context.Context, tx bun.Tx) (any, any, error) {
		return nil, map[string]any{"code": code, "enabled": false}, p.CMS.Earning.DisableRule(ctx, tx, me.Partner.ID, code)
	})
	if err != nil {
		p.fail(w, r, err, 0, "")
		return
	}
	changed(w, r, Path+"/rules", noticeSaved)
}

// --- ads (PUT/DELETE /integrations/ads/{id}) ---

func adValues(a *content.Ad, loc *time.Location) (url.Values, int) {
	v := url.Values{}
	v.Set("id", a.ID)
	v.Set("kind", a.Kind)
	v.Set("title", a.Title)
	v.Set("body", a.Body)
	for k, p := range map[string]*string{"imageUrl": a.ImageURL, "link": a.LinkURL, "action": a.ActionCode} {
		if p != nil {
			v.Set(k, *p)
		}
	}
	v.Set("priority", strconv.Itoa(a.Priority))
	v.Set("visibleFrom", timeValue(a.VisibleFrom, loc))
	v.Set("visibleUntil", timeValue(a.VisibleUntil, loc))
	v.Set("countries", strings.Join(a.Countries, ", "))
	return v, translationRows(v, a.Translations, "title", "body")
}

func (p *Portal) adsPage(w http.ResponseWriter, r *http.Request) { p.adsView(w, r, http.StatusOK, nil) }

func (p *Portal) adsView(w http.ResponseWriter, r *http.Request, status int, posted *form) {
	me := current(r)
	loc := me.Partner.Location()
	ads, err := p.CMS.Content.List(r.Context(), p.DB, me.Partner.ID)
	if err != nil {
		p.fail(w, r, err, 0, "")
		return
	}
	d := listPage[content.Ad]{Items: ads, Loc: loc, Form: posted}
	rows := 1
	if posted == nil {
		d.Form = &form{Values: url.Values{"kind": {content.KindNews}}}
		if id := r.URL.Query().Get("edit"); id != "" {
			for i := range ads {
				if ads[i].ID == id {
					d.Form.Values, rows = adValues(&ads[i], loc)
					d.Editing = id
				}
			}
		}
	} else {
		rows = rowsOf(posted.Values)
	}
	d.Rows = seq(rows)
	p.render(w, r, status, "ads", &view{Title: "Ads", Nav: "catalog", Notice: savedNotice(r, noticeSaved), Error: postedError(posted), Data: d})
}

// saveAd is content.Service.Put (PUT /integrations/ads/{id}).
func (p *Portal) saveAd(w http.ResponseWriter, r *http.Request) {
	me := current(r)
	ps := &parsed{v: r.PostForm, loc: me.Partner.Location()}
	id := ps.str("id")
	in := content.Input{Kind: ps.str("kind"), Title: ps.v.Get("title"), Body: strings.ReplaceAll(ps.v.Get("body"), "\r\n", "\n"),
		ImageURL: ps.optStr("imageUrl"), LinkURL: ps.optStr("link"), ActionCode: ps.optStr("action"), Countries: ps.list("countries")}
	if n := ps.int("priority"); n != nil {
		in.Priority = *n
	}
	in.VisibleFrom, in.VisibleUntil = ps.time("visibleFrom"), ps.time("visibleUntil")
	in.Translations = ps.translations("title", "body")
	err := ps.err
	if err == nil {
		err = p.audited(r.Context(), me, "ad.put", "ad "+id, func(ctx context.Context, tx bun.Tx) (any, any, error) {
			var before any
			if old, err := p.CMS.Content.Get(ctx, tx, me.Partner.ID, id); err == nil {
				before = old
			}
			ad, _, err := p.CMS.Content.Put(ctx, tx, me.Partner.ID, id, in)
			return before, ad, err
		})
	}
	if e := refusal(err); e != nil {
		p.adsView(w, r, apperr.Lookup(e.Code).Status, &form{Values: r.PostForm, Err: e})
		return
	}
	if err != nil {
		p.fail(w, r, err, 0, "")
		return
	}
	changed(w, r, Path+"/ads", noticeSaved)
}

// deleteAd is content.Service.Delete (DELETE /integrations/ads/{id}).
func (p *Portal) deleteAd(w http.ResponseWriter, r *http.Request) {
	me := current(r)
	id := r.PathValue("id")
	err := p.audited(r.Context(), me, "ad.delete", "ad "+id, func(ctx context.Context, tx bun.Tx) (any, any, error) {
		old, err := p.CMS.Content.Get(ctx, tx, me.Partner.ID, id)
		if err != nil {
			return nil, nil, err
		}
		return old, nil, p.CMS.Content.Delete(ctx, tx, me.Partner.ID, id)
	})
	if err != nil {
		p.fail(w, r, err, 0, "")
		return
	}
	changed(w, r, Path+"/ads", noticeSaved)
}

// --- program settings: policy and default locale (PUT /integrations/program),
// tiers (PUT /integrations/tiers), referral policy (PUT /integrations/referral-policy) ---

type settingsData struct {
	Program, Tiers, Referrals *form
	TierRows                  []int
}

func programValues(pol program.Policy, defaultLocale *string) url.Values {
	v := url.Values{}
	v.Set("expiryMode", pol.ExpiryMode)
	v.Set("expiryDays", itoa(pol.ExpiryDays))
	v.Set("expiryRoundToMonthEnd", boolValue(pol.ExpiryRoundToMonthEnd))
	v.Set("expiryDates", strings.Join(pol.ExpiryDates, ", "))
	v.Set("pendingDays", strconv.Itoa(pol.PendingDays))
	v.Set("negativeBalance", pol.NegativeBalance)
	v.Set("expiryWarningDays", strconv.Itoa(pol.ExpiryWarningDays))
	if pol.Currency != nil {
		v.Set("currency", *pol.Currency)
	}
	v.Set("tierBasis", pol.TierBasis)
	v.Set("tierDowngrade", pol.TierDowngrade)
	v.Set("tierGraceDays", strconv.Itoa(pol.TierGraceDays))
	if defaultLocale != nil {
		v.Set("defaultLocale", *defaultLocale)
	}
	return v
}

func tierValues(list []tier.Tier) (url.Values, int) {
	v := url.Values{}
	for i, t := range list {
		p := "tier." + strconv.Itoa(i) + "."
		v.Set(p+"code", t.Code)
		v.Set(p+"name", t.Name)
		v.Set(p+"threshold", strconv.FormatInt(t.Threshold, 10))
		v.Set(p+"multiplier", string(tier.FormatMultiplier(t.Multiplier)))
		v.Set(p+"benefits", t.Benefits)
	}
	return v, len(list) + 1
}

func referralValues(pol referral.Policy) url.Values {
	v := url.Values{}
	v.Set("enabled", boolValue(pol.Enabled))
	v.Set("codePattern", pol.CodePattern)
	v.Set("linkTemplate", pol.LinkTemplate)
	v.Set("attributionWindowDays", strconv.Itoa(pol.AttributionWindowDays))
	v.Set("qualifyAction", pol.QualifyAction)
	v.Set("qualifyMinAmount", i64toa(pol.QualifyMinAmount))
	v.Set("referrerPoints", strconv.FormatInt(pol.ReferrerPoints, 10))
	v.Set("refereePoints", strconv.FormatInt(pol.RefereePoints, 10))
	v.Set("holdDays", strconv.Itoa(pol.HoldDays))
	v.Set("monthlyCap", itoa(pol.MonthlyCap))
	v.Set("lifetimeCap", itoa(pol.LifetimeCap))
	v.Set("velocityLimit", itoa(pol.VelocityLimit))
	v.Set("velocityWindowMinutes", strconv.Itoa(pol.VelocityWindowMinutes))
	return v
}

func (p *Portal) settingsPage(w http.ResponseWriter, r *http.Request) {
	p.settingsView(w, r, http.StatusOK, settingsData{})
}

// settingsView shows the three forms; a refused one keeps what was posted.
func (p *Portal) settingsView(w http.ResponseWriter, r *http.Request, status int, d settingsData) {
	me := current(r)
	ctx := r.Context()
	var refused *form
	for _, f := range []*form{d.Program, d.Tiers, d.Referrals} {
		if f != nil {
			refused = f
		}
	}
	if d.Program == nil {
		pol, err := p.CMS.Program.Get(ctx, p.DB, me.Partner.ID)
		if err != nil {
			p.fail(w, r, err, 0, "")
			return
		}
		d.Program = &form{Values: programValues(pol, me.Partner.DefaultLocale)}
	}
	rows := 1
	if d.Tiers == nil {
		list, err := p.CMS.Tiers.List(ctx, p.DB, me.Partner.ID)
		if err != nil {
			p.fail(w, r, err, 0, "")
			return
		}
		var v url.Values
		v, rows = tierValues(list)
		d.Tiers = &form{Values: v}
	} else {
		for i := 0; i < tier.MaxTiers; i++ {
			if d.Tiers.Values.Has("tier." + strconv.Itoa(i) + ".code") {
				rows = i + 1
			}
		}
	}
	d.TierRows = seq(min(rows, tier.MaxTiers))
	if d.Referrals == nil {
		pol, _, err := p.CMS.Referrals.Policy(ctx, p.DB, me.Partner.ID)
		if err != nil {
			p.fail(w, r, err, 0, "")
			return
		}
		d.Referrals = &form{Values: referralValues(pol)}
	}
	p.render(w, r, status, "settings", &view{Title: "Program settings", Nav: "catalog", Notice: savedNotice(r, noticeSaved), Error: postedError(refused), Data: d})
}

func (p *Portal) settingsRefused(w http.ResponseWriter, r *http.Request, err error, which func(*settingsData, *form)) {
	if e := refusal(err); e != nil {
		var d settingsData
		which(&d, &form{Values: r.PostForm, Err: e})
		p.settingsView(w, r, apperr.Lookup(e.Code).Status, d)
		return
	}
	p.fail(w, r, err, 0, "")
}

// saveProgram is program.Put and SetDefaultLocale (PUT /integrations/program).
func (p *Portal) saveProgram(w http.ResponseWriter, r *http.Request) {
	me := current(r)
	ps := &parsed{v: r.PostForm}
	in := program.Input{ExpiryMode: ps.str("expiryMode"), ExpiryDays: ps.int("expiryDays"), ExpiryRoundToMonthEnd: ps.bool("expiryRoundToMonthEnd"),
		ExpiryDates: ps.list("expiryDates"), NegativeBalance: ps.str("negativeBalance"), Currency: ps.optStr("currency"),
		TierBasis: ps.str("tierBasis"), TierDowngrade: ps.str("tierDowngrade")}
	for name, dst := range map[string]*int{"pendingDays": &in.PendingDays, "expiryWarningDays": &in.ExpiryWarningDays, "tierGraceDays": &in.TierGraceDays} {
		if n := ps.int(name); n != nil {
			*dst = *n
		}
	}
	err := ps.err
	if err == nil {
		err = p.audited(r.Context(), me, "program.put", "program", func(ctx context.Context, tx bun.Tx) (any, any, error) {
			old, err := p.CMS.Program.Get(ctx, tx, me.Partner.ID)
			if err != nil {
				return nil, nil, err
			}
			pol, err := p.CMS.Program.Put(ctx, tx, me.Partner.ID, in)
			if err != nil {
				return nil, nil, err
			}
			dl, err := p.CMS.Program.SetDefaultLocale(ctx, tx, me.Partner.ID, ps.optStr("defaultLocale"))
			return map[string]any{"policy": old, "defaultLocale": me.Partner.DefaultLocale}, map[string]any{"policy": pol, "defaultLocale": dl}, err
		})
	}
	if err != nil {
		p.settingsRefused(w, r, err, func(d *settingsData, f *form) { d.Program = f })
		return
	}
	changed(w, r, Path+"/settings", noticeSaved)
}

// saveTiers is tier.Service.PutTx (PUT /integrations/tiers): rows without
// a code are dropped, so emptying a row removes its tier.
func (p *Portal) saveTiers(w http.ResponseWriter, r *http.Request) {
	me := current(r)
	ps := &parsed{v: r.PostForm}
	var in []tier.Input
	for i := 0; i < tier.MaxTiers+1; i++ {
		pre := "tier." + strconv.Itoa(i) + "."
		code := ps.str(pre + "code")
		if code == "" {
			continue
		}
		t := tier.Input{Code: code, Name: ps.str(pre + "name"), Benefits: ps.str(pre + "benefits"), Multiplier: tier.MultiplierScale}
		field := "tiers[" + strconv.Itoa(len(in)) + "]"
		if n := ps.int64(pre+"threshold", false); n != nil {
			t.Threshold = *n
		}
		if m := ps.str(pre + "multiplier"); m != "" {
			v, err := tier.ParseMultiplier(field+".multiplier", json.Number(m))
			if err != nil && ps.err == nil {
				ps.err = err
			}
			t.Multiplier = v
		}
		in = append(in, t)
	}
	err := ps.err
	if err == nil {
		err = p.audited(r.Context(), me, "tiers.put", "tiers", func(ctx context.Context, tx bun.Tx) (any, any, error) {
			old, err := p.CMS.Tiers.List(ctx, tx, me.Partner.ID)
			if err != nil {
				return nil, nil, err
			}
			list, err := p.CMS.Tiers.PutTx(ctx, tx, me.Partner.ID, in)
			return old, list, err
		})
	}
	if err != nil {
		p.settingsRefused(w, r, err, func(d *settingsData, f *form) { d.Tiers = f })
		return
	}
	changed(w, r, Path+"/settings", noticeSaved)
}

// saveReferrals is referral.Service.PutPolicy (PUT /integrations/referral-policy).
func (p *Portal) saveReferrals(w http.ResponseWriter, r *http.Request) {
	me := current(r)
	ps := &parsed{v: r.PostForm}
	pol := referral.DefaultPolicy(me.Partner.ID)
	pol.Enabled, pol.QualifyAction = ps.bool("enabled"), ps.str("qualifyAction")
	if s := ps.str("codePattern"); s != "" {
		pol.CodePattern = s
	}
	pol.LinkTemplate = ps.str("linkTemplate")
	pol.QualifyMinAmount = ps.int64("qualifyMinAmount", false)
	if n := ps.int64("referrerPoints", true); n != nil {
		pol.ReferrerPoints = *n
	}
	if n := ps.int64("refereePoints", true); n != nil {
		pol.RefereePoints = *n
	}
	for name, dst := range map[string]*int{"attributionWindowDays": &pol.AttributionWindowDays, "holdDays": &pol.HoldDays, "velocityWindowMinutes": &pol.VelocityWindowMinutes} {
		if n := ps.int(name); n != nil {
			*dst = *n
		}
	}
	pol.MonthlyCap, pol.LifetimeCap, pol.VelocityLimit = ps.int("monthlyCap"), ps.int("lifetimeCap"), ps.int("velocityLimit")
	err := ps.err
	if err == nil {
		err = p.audited(r.Context(), me, "referral-policy.put", "referral policy", func(ctx context.Context, tx bun.Tx) (any, any, error) {
			old, _, err := p.CMS.Referrals.Policy(ctx, tx, me.Partner.ID)
			if err != nil {
				return nil, nil, err
			}
			out, err := p.CMS.Referrals.PutPolicy(ctx, tx, me.Partner.ID, pol)
			return old, out, err
		})
	}
	if err != nil {
		p.settingsRefused(w, r, err, func(d *settingsData, f *form) { d.Referrals = f })
		return
	}
	changed(w, r, Path+"/settings", noticeSaved)
}

// --- campaigns (PUT/DELETE /integrations/campaigns/{code}) ---

func campaignValues(c *campaign.Campaign, loc *time.Location) url.Values {
	v := url.Values{}
	v.Set("code", c.Code)
	v.Set("name", c.Name)
	v.Set("description", c.Description)
	v.Set("from", timeValue(c.StartsAt, loc))
	v.Set("until", timeValue(c.EndsAt, loc))
	v.Set("actions", strings.Join(c.Actions, ", "))
	v.Set("multiplier", c.Multiplier())
	v.Set("bonus", i64toa(c.BonusPoints))
	v.Set("condition", c.Condition)
	v.Set("budget", i64toa(c.BudgetPoints))
	v.Set("perUserCap", i64toa(c.UserCapPoints))
	v.Set("stacking", c.Stacking)
	v.Set("enabled", boolValue(c.Enabled))
	return v
}

func (p *Portal) campaignsPage(w http.ResponseWriter, r *http.Request) {
	p.campaignsView(w, r, http.StatusOK, nil)
}

func (p *Portal) campaignsView(w http.ResponseWriter, r *http.Request, status int, posted *form) {
	me := current(r)
	loc := me.Partner.Location()
	list, err := p.CMS.Campaigns.List(r.Context(), p.DB, me.Partner.ID)
	if err != nil {
		p.fail(w, r, err, 0, "")
		return
	}
	d := listPage[campaign.Campaign]{Items: list, Loc: loc, Form: posted}
	if posted == nil {
		d.Form = &form{Values: url.Values{"enabled": {"on"}, "stacking": {campaign.StackAdditive}}}
		if code := r.URL.Query().Get("edit"); code != "" {
			for i := range list {
				if list[i].Code == code {
					d.Form.Values, d.Editing = campaignValues(&list[i], loc), code
				}
			}
		}
	}
	p.render(w, r, status, "campaigns", &view{Title: "Campaigns", Nav: "catalog", Notice: savedNotice(r, noticeSaved), Error: postedError(posted), Data: d})
}

// saveCampaign is campaign.Service.PutTx (PUT /integrations/campaigns/{code}):
// a CEL condition that does not compile is refused with the compiler's
// message next to the field, as the REST API reports it.
func (p *Portal) saveCampaign(w http.ResponseWriter, r *http.Request) {
	me := current(r)
	ps := &parsed{v: r.PostForm, loc: me.Partner.Location()}
	code := ps.str("code")
	in := campaign.Input{Name: ps.str("name"), Description: strings.ReplaceAll(ps.v.Get("description"), "\r\n", "\n"),
		Actions: ps.list("actions"), Condition: strings.TrimSpace(ps.v.Get("condition")), Stacking: ps.str("stacking"), Enabled: ps.bool("enabled")}
	in.StartsAt, in.EndsAt = ps.time("from"), ps.time("until")
	if m := ps.str("multiplier"); m != "" {
		v, err := campaign.ParseMultiplier("multiplier", m)
		if err != nil && ps.err == nil {
			ps.err = err
		}
		in.MultiplierHundredths = &v
	}
	in.BonusPoints, in.BudgetPoints, in.UserCapPoints = ps.int64("bonus", false), ps.int64("budget", false), ps.int64("perUserCap", false)
	err := ps.err
	if err == nil {
		err = campaign.ValidateCode("code", code)
	}
	if err == nil {
		err = p.audited(r.Context(), me, "campaign.put", "campaign "+code, func(ctx context.Context, tx bun.Tx) (any, any, error) {
			var before any
			if old, err := p.CMS.Campaigns.Get(ctx, tx, me.Partner.ID, code); err == nil {
				before = old
			}
			c, _, err := p.CMS.Campaigns.PutTx(ctx, tx, me.Partner.ID, code, in)
			return before, c, err
		})
	}
	if e := refusal(err); e != nil {
		p.campaignsView(w, r, apperr.Lookup(e.Code).Status, &form{Values: r.PostForm, Err: e})
		return
	}
	if err != nil {
		p.fail(w, r, err, 0, "")
		return
	}
	changed(w, r, Path+"/campaigns", noticeSaved)
}

// deleteCampaign is campaign.Service.DeleteTx (DELETE /integrations/campaigns/{code}).
func (p *Portal) deleteCampaign(w http.ResponseWriter, r *http.Request) {
	me := current(r)
	code := r.PathValue("code")
	err := p.audited(r.Context(), me, "campaign.delete", "campaign "+code, func(ctx context.Context, tx bun.Tx) (any, any, error) {
		old, err := p.CMS.Campaigns.Get(ctx, tx, me.Partner.ID, code)
		if err != nil {
			return nil, nil, err
		}
		return old, nil, p.CMS.Campaigns.DeleteTx(ctx, tx, me.Partner.ID, code)
	})
	if err != nil {
		p.fail(w, r, err, 0, "")
		return
	}
	changed(w, r, Path+"/campaigns", noticeSaved)
}
