package voucher

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// The merchant portal's till and history (issue 17). A merchant account
// belongs to a merchant id; the same merchant id may be a merchant of
// several partners (merchants' key is partner_id, id), and the till looks a
// code up in each of them, but a voucher is valid here only where its
// gift lists this merchant.

// TillState is what the till shows about a scanned code.
type TillState string

// Till states, in the order the till checks them.
const (
	// TillValid: honoured here, claimed, not expired; an OTP completes it.
	TillValid TillState = "valid"
	// TillOTPLocked: valid, but wrong one-time codes used up the attempts;
	// the customer asks for a new code in the app.
	TillOTPLocked TillState = "locked"
	TillRedeemed  TillState = "redeemed"
	TillExpired   TillState = "expired"
	TillCancelled TillState = "cancelled"
	// TillOtherMerchant: a voucher of a partner this merchant serves, for a
	// gift another merchant (or only the app) honours.
	TillOtherMerchant TillState = "other-merchant"
)

// TillVoucher is one voucher a code names, in one partner the merchant
// serves, as the till may show it.
type TillVoucher struct {
	PartnerID   uuid.UUID
	PartnerName string
	State       TillState
	// For a voucher honoured here only (nil/empty otherwise): the owner's
	// display name is shown so the operator can match the customer.
	Voucher          *Voucher
	GiftSKU          string
	GiftTitle        string
	OwnerDisplayName *string
	// RedeemedHere: redeemed by this merchant (at the till or by its
	// server), so "already redeemed" can say when.
	RedeemedHere bool
}

type tillRow struct {
	Voucher          `bun:",extend"`
	GiftSKU          string  `bun:"gift_sku"`
	GiftTitle        string  `bun:"gift_title"`
	OwnerDisplayName *string `bun:"owner_display_name"`
	PartnerName      string  `bun:"partner_name"`
	Honoured         bool    `bun:"honoured"`
}

// ForTill finds code among the vouchers of every partner merchantID serves
// (an enabled merchant row with this id) and says what the till may do
// with each: nothing is found for a code of a partner the merchant does not
// serve, so a wrong code and another program's code look the same. Several
// results happen only when two partners issued the same code; the till
// then asks which program the customer's voucher is from.
func (s *Service) ForTill(ctx context.Context, db bun.IDB, merchantID uuid.UUID, code string) ([]TillVoucher, error) {
	code = strings.TrimSpace(code)
	if code == "" || len(code) > 200 {
		return nil, nil
	}
	var rows []tillRow
	err := db.NewRaw(`SELECT v.*, g.sku AS gift_sku, g.title AS gift_title, u.display_name AS owner_display_name,
			COALESCE(NULLIF(p.display_name, ''), p.name) AS partner_name,
			EXISTS (SELECT 1 FROM gift_merchants gm WHERE gm.partner_id = v.partner_id AND gm.gift_id = v.gift_id AND gm.merchant_id = m.id) AS honoured
		FROM merchants m
		JOIN partners p ON p.id = m.partner_id
		JOIN vouchers v ON v.partner_id = m.partner_id AND v.code = ?
		JOIN gifts g ON g.partner_id = v.partner_id AND g.id = v.gift_id
		JOIN users u ON u.partner_id = v.partner_id AND u.id = v.user_id
		WHERE m.id = ? AND m.enabled
		ORDER BY partner_name`, code, merchantID).Scan(ctx, &rows)
	if err != nil {
		return nil, fmt.Errorf("look up voucher at the till: %w", err)
	}
	now := s.Now().UTC()
	out := make([]TillVoucher, 0, len(rows))
	for i := range rows {
		r := &rows[i]
		tv := TillVoucher{PartnerID: r.PartnerID, PartnerName: r.PartnerName}
		if !r.Honoured {
			tv.State = TillOtherMerchant
			tv.GiftTitle = r.GiftTitle
			out = append(out, tv)
			continue
		}
		v := r.Voucher
		tv.Voucher, tv.GiftSKU, tv.GiftTitle, tv.OwnerDisplayName = &v, r.GiftSKU, r.GiftTitle, r.OwnerDisplayName
		tv.RedeemedHere = v.RedeemedByMerchantID != nil && *v.RedeemedByMerchantID == merchantID
		switch v.EffectiveStatus(now) {
		case StatusRedeemed:
			tv.State = TillRedeemed
		case StatusExpired:
			tv.State = TillExpired
		case StatusCancelled:
			tv.State = TillCancelled
		default:
			tv.State = TillValid
			if v.OTPMAC != nil && v.OTPAttempts >= MaxOTPAttempts {
				tv.State = TillOTPLocked
			}
		}
		out = append(out, tv)
	}
	return out, nil
}

// Redemption is one voucher redeemed by a merchant, as its history lists it.
type Redemption struct {
	PartnerID    uuid.UUID  `bun:"partner_id,type:uuid"`
	PartnerName  string     `bun:"partner_name"`
	VoucherID    uuid.UUID  `bun:"id,type:uuid"`
	Code         *string    `bun:"code"`
	GiftSKU      string     `bun:"gift_sku"`
	GiftTitle    string     `bun:"gift_title"`
	RedeemedAt   time.Time  `bun:"redeemed_at"`
	OperatorID   *uuid.UUID `bun:"redeemed_by_account_id,type:uuid"`
	OperatorName string     `bun:"operator_name"`
	// OperatorEmail is empty for a server-to-server redemption.
	OperatorEmail string `bun:"operator_email"`
}

// Operator names who redeemed: the operator's name, else their address,
// else "API" for a server-to-server redemption.
func (r *Redemption) Operator() string {
	switch {
	case r.OperatorName != "":
		return r.OperatorName
	case r.OperatorEmail != "":
		return r.OperatorEmail
	}
	return "API (server)"
}

// HistoryParams filter a merchant's redemption history. From is
// inclusive, To exclusive; zero times are open ends.
type HistoryParams struct {
	MerchantID uuid.UUID
	From, To   time.Time
	// PartnerID and OperatorID narrow to one partner or one operator.
	PartnerID  uuid.UUID
	OperatorID uuid.UUID
	// ServerOnly lists only server-to-server redemptions (no operator).
	ServerOnly bool
	// Before pages: redemptions strictly older than (Before, BeforeID).
	Before   time.Time
	BeforeID uuid.UUID
	Limit    int
}

func (p *HistoryParams) where(q *bun.SelectQuery) *bun.SelectQuery {
	q = q.Where("v.redeemed_by_merchant_id = ?", p.MerchantID).
		// Only partners the merchant still serves: a detached partner's
		// redemptions are that partner's business.
		Where("EXISTS (SELECT 1 FROM merchants m WHERE m.partner_id = v.partner_id AND m.id = v.redeemed_by_merchant_id)").
		Where("v.status = 'redeemed'")
	if !p.From.IsZero() {
		q = q.Where("v.redeemed_at >= ?", p.From)
	}
	if !p.To.IsZero() {
		q = q.Where("v.redeemed_at < ?", p.To)
	}
	if p.PartnerID != uuid.Nil {
		q = q.Where("v.partner_id = ?", p.PartnerID)
	}
	if p.OperatorID != uuid.Nil {
		q = q.Where("v.redeemed_by_account_id = ?", p.OperatorID)
	}
	if p.ServerOnly {
		q = q.Where("v.redeemed_by_account_id IS NULL")
	}
	return q
}

// History lists a merchant's redemptions, newest first, with the operator
// who redeemed each at the till.
func (s *Service) History(ctx context.Context, db bun.IDB, p HistoryParams) ([]Redemption, error) {
	if p.Limit <= 0 || p.Limit > 10000 {
		p.Limit = 100
	}
	var out []Redemption
	q := db.NewSelect().TableExpr("vouchers AS v").
		ColumnExpr("v.partner_id, v.id, v.code, v.redeemed_at, v.redeemed_by_account_id").
		ColumnExpr("COALESCE(NULLIF(p.display_name, ''), p.name) AS partner_name, g.sku AS gift_sku, g.title AS gift_title").
		ColumnExpr("COALESCE(a.name, '') AS operator_name, COALESCE(a.email, '') AS operator_email").
		Join("JOIN partners p ON p.id = v.partner_id").
		Join("JOIN gifts g ON g.partner_id = v.partner_id AND g.id = v.gift_id").
		Join("LEFT JOIN accounts a ON a.id = v.redeemed_by_account_id")
	q = p.where(q)
	if !p.Before.IsZero() {
		q = q.Where("(v.redeemed_at, v.id) < (?, ?)", p.Before, p.BeforeID)
	}
	if err := q.OrderExpr("v.redeemed_at DESC, v.id DESC").Limit(int64(p.Limit)).Scan(ctx, &out); err != nil {
		return nil, fmt.Errorf("redemption history: %w", err)
	}
	return out, nil
}

// DailyTotal is the number of redemptions of one day (in the time zone
// asked for) and partner.
type DailyTotal struct {
	Day         string `bun:"day"`
	PartnerName string `bun:"partner_name"`
	Count       int    `bun:"n"`
}

// DailyTotals counts a merchant's redemptions per day in tz (an IANA
// name; the caller validated it) and partner, newest day first, under the
// same filters as History (Before and Limit ignored).
func (s *Service) DailyTotals(ctx context.Context, db bun.IDB, p HistoryParams, tz string) ([]DailyTotal, error) {
	var out []DailyTotal
	q := db.NewSelect().TableExpr("vouchers AS v").
		ColumnExpr("to_char((v.redeemed_at AT TIME ZONE ?)::date, 'YYYY-MM-DD') AS day", tz).
		ColumnExpr("COALESCE(NULLIF(p.display_name, ''), p.name) AS partner_name, count(*) AS n").
		Join("JOIN partners p ON p.id = v.partner_id")
	q = p.where(q)
	if err := q.GroupExpr("1, 2").OrderExpr("1 DESC, 2").Limit(400).Scan(ctx, &out); err != nil {
		return nil, fmt.Errorf("daily redemption totals: %w", err)
	}
	return out, nil
}

// WriteHistoryCSV writes redemptions as CSV with a header row. Cells that
// a spreadsheet would run as a formula are prefixed with a quote.
func WriteHistoryCSV(w io.Writer, rows []Redemption) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"redeemed_at", "partner", "voucher_code", "gift_sku", "gift", "operator", "operator_email", "voucher_id"})
	for _, r := range rows {
		code := ""
		if r.Code != nil {
			code = *r.Code
		}
		_ = cw.Write([]string{
			r.RedeemedAt.UTC().Format(time.RFC3339), safeCell(r.PartnerName), safeCell(code), safeCell(r.GiftSKU),
			safeCell(r.GiftTitle), safeCell(r.Operator()), safeCell(r.OperatorEmail), r.VoucherID.String(),
		})
	}
	cw.Flush()
	return cw.Error()
}

// safeCell defuses CSV injection: a cell starting with = + - @ or a tab is
// prefixed with a single quote.
func safeCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
