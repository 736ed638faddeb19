package merchantportal

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/account"
	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/partner"
	"github.com/perkshq/perks/internal/voucher"
)

// The till: one round trip per step, no script needed. Step 1 is a GET
// form (a barcode scanner types the code and presses Enter): the answer
// says what the voucher is for and whether it is valid here. Step 2 posts
// the customer's one-time code: the answer is the redemption or why not.

type tillData struct {
	Code    string
	Looked  bool
	Results []voucher.TillVoucher
	// Outcome of a redemption: "success" or "failure" ("" before one).
	Outcome  string
	Message  string
	Redeemed *voucher.MerchantView
	// MultiPartner shows which program each voucher is from.
	MultiPartner bool
	CanRedeem    bool
}

func (p *Portal) till(w http.ResponseWriter, r *http.Request) {
	p.tillPage(w, r, http.StatusOK, strings.TrimSpace(r.URL.Query().Get("code")), nil)
}

// tillPage looks code up (when not empty) and renders the till; d carries
// a redemption's outcome.
func (p *Portal) tillPage(w http.ResponseWriter, r *http.Request, status int, code string, d *tillData) {
	me := current(r)
	if d == nil {
		d = &tillData{}
	}
	d.Code, d.MultiPartner, d.CanRedeem = code, len(me.Served) > 1, me.Account.Can(account.PermRedeem)
	if code != "" && d.Redeemed == nil {
		res, err := p.Vouchers.ForTill(r.Context(), p.DB, me.MerchantID(), code)
		if err != nil {
			p.fail(w, r, err, 0, "")
			return
		}
		d.Looked, d.Results = true, res
	}
	p.render(w, r, status, "till", &view{Title: "Till", Nav: "till", Data: d})
}

// redeem redeems a voucher at the till with the customer's one-time code
// (PermRedeem, checked by authed before this runs). The partner must be
// one the merchant serves and has enabled; the rest (honoured here,
// active, code right, attempts, concurrency) is voucher.RedeemAtTillTx's.
// A wrong code's counted attempt is committed, like the REST route's.
func (p *Portal) redeem(w http.ResponseWriter, r *http.Request) {
	me := current(r)
	code := strings.TrimSpace(r.PostFormValue("code"))
	otp := strings.TrimSpace(r.PostFormValue("otp"))
	partnerID, err := uuid.Parse(r.PostFormValue("partner"))
	s := me.served(partnerID)
	if err != nil || s == nil || !s.Enabled {
		p.tillPage(w, r, http.StatusNotFound, code, &tillData{Outcome: "failure", Message: "No voucher with this code for your shop."})
		return
	}
	pt, err := p.Partners.ByID(r.Context(), p.DB, partnerID)
	if err == nil {
		err = pt.CheckEnabled(partner.AudienceOperator)
	}
	var view *voucher.MerchantView
	var attempt *voucher.AttemptError
	if err == nil {
		err = p.DB.RunInTx(r.Context(), nil, func(ctx context.Context, tx bun.Tx) error {
			v, err := p.Vouchers.RedeemAtTillTx(ctx, tx, partnerID, me.MerchantID(), me.Account.ID, code, otp)
			if errors.As(err, &attempt) {
				return nil // commit the counted attempt
			}
			if err != nil {
				return err
			}
			view = v
			return p.record(ctx, tx, me, "voucher.redeem", code, nil, map[string]any{"voucherId": v.Voucher.ID, "partnerId": partnerID, "gift": v.GiftSKU})
		})
	}
	if attempt != nil {
		err = attempt.Err
	}
	if err != nil {
		e := apperr.As(err)
		if e == nil || e.Code == apperr.CodeInternal {
			p.fail(w, r, err, 0, "")
			return
		}
		p.tillPage(w, r, apperr.Lookup(e.Code).Status, code, &tillData{Outcome: "failure", Message: tillMessage(e)})
		return
	}
	p.tillPage(w, r, http.StatusOK, code, &tillData{Outcome: "success", Message: "Redeemed: hand over " + view.GiftTitle + ".", Redeemed: view})
}

// tillMessage is what the operator reads for a refused redemption.
func tillMessage(e *apperr.Error) string {
	switch e.Code {
	case apperr.CodeVoucherNotFound:
		return "No voucher with this code for your shop."
	case apperr.CodeOTPInvalid:
		return "Wrong one-time code: " + e.Message + "."
	case apperr.CodeOTPLocked:
		return "Locked: too many wrong one-time codes. The customer asks for a new code in the app."
	case apperr.CodeOTPExpired:
		return "The one-time code expired. The customer asks for a new code in the app."
	case apperr.CodeVoucherNotActive:
		return "Not redeemed: " + e.Message + "."
	case apperr.CodeInvalidField:
		return "Enter the 6 digits the customer's app shows."
	}
	return e.Message
}
