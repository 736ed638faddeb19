package audit

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// SearchParams filter Search, the platform console's audit log across
// every partner, merchant and the platform itself. Zero values do not
// filter.
type SearchParams struct {
	// Realm: partner, merchant or platform.
	Realm string
	// RealmID: one partner or merchant.
	RealmID uuid.UUID
	// Action: entries whose action starts with it ("partner." finds every
	// onboarding change).
	Action string
	// Actor: entries whose actor label contains it, case-insensitively.
	Actor string
	// From and To bound the time (From included, To excluded).
	From, To time.Time
	// BeforeID pages backwards (0: newest).
	BeforeID int64
	// Limit caps the page (default 100, at most 10000).
	Limit int
}

// Search returns the entries of every realm matching p, newest first. Only
// the platform console calls it: partners and merchants read their own
// realm id with List.
func (l *Log) Search(ctx context.Context, db bun.IDB, p SearchParams) ([]Entry, error) {
	if p.Limit <= 0 {
		p.Limit = 100
	}
	p.Limit = min(p.Limit, 10000)
	var out []Entry
	q := db.NewSelect().Model(&out)
	if p.Realm != "" {
		q = q.Where("realm = ?", p.Realm)
	}
	if p.RealmID != uuid.Nil {
		q = q.Where("realm_id = ?", p.RealmID)
	}
	if p.Action != "" {
		q = q.Where("starts_with(action, ?)", p.Action)
	}
	if p.Actor != "" {
		q = q.Where("strpos(lower(actor_label), ?) > 0", strings.ToLower(p.Actor))
	}
	if !p.From.IsZero() {
		q = q.Where("at >= ?", p.From)
	}
	if !p.To.IsZero() {
		q = q.Where("at < ?", p.To)
	}
	if p.BeforeID > 0 {
		q = q.Where("id < ?", p.BeforeID)
	}
	if err := q.OrderExpr("id DESC").Limit(int64(p.Limit)).Scan(ctx); err != nil {
		return nil, fmt.Errorf("search audit entries: %w", err)
	}
	return out, nil
}

// SearchCSVHeader is the first line of WriteSearchCSV: WriteCSV's columns
// after the realm and its id.
var SearchCSVHeader = append([]string{"realm", "realm_id"}, CSVHeader...)

// WriteSearchCSV writes entries of several realms as CSV: each row says
// whose realm it belongs to. Formula characters are guarded as in WriteCSV.
func WriteSearchCSV(w io.Writer, entries []Entry) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(SearchCSVHeader); err != nil {
		return err
	}
	for _, e := range entries {
		realmID := ""
		if e.RealmID != nil {
			realmID = e.RealmID.String()
		}
		rec := []string{
			e.Realm, realmID, strconv.FormatInt(e.ID, 10), e.At.UTC().Format(time.RFC3339), e.ActorKind, e.ActorID, e.ActorLabel,
			e.Action, e.Target, string(e.Before), string(e.After),
		}
		for i, c := range rec {
			if c != "" && strings.ContainsRune("=+-@\t\r", rune(c[0])) {
				rec[i] = "'" + c
			}
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
