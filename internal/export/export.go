// Package export is the incremental change feed of a partner's users (seed
// 001 user/incrementalinfos): every user changed since a cursor, with their
// profile when it changed, their balance, the actions recorded and the gifts
// claimed (or whose voucher changed status) since the cursor.
//
// The cursor is a transaction-id watermark. Every row carries the xid8 of
// the transaction that last wrote it; an export reads, in one REPEATABLE
// READ snapshot, the rows whose xid lies in [from, to) where `to` is the
// snapshot's xmin (the oldest transaction still running when the snapshot
// was taken). Every transaction below `to` has finished, so nothing in the
// range can still appear; a transaction that commits late has an xid at or
// above `to` and lands in a later export. Row versions with xid >= to that
// the snapshot can already see are left for the next export too, so nothing
// is read twice. Ids or timestamps cannot do this: commit order differs from
// sequence order.
//
// Cursors are opaque and signed with the keyring, and bound to the partner.
//
// On a streaming standby the same rule holds with the standby's own
// snapshot: its xmin is the oldest transaction that the standby has not
// seen finish, so the range below it is complete there (transactions whose
// first WAL record has not arrived count as running). A cursor made on a
// server that is further ahead (the primary, or a standby with less lag)
// may point past what this standby has applied; such a page is read on
// the primary instead, so no client ever sees a row twice or misses one.
package export

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/keyring"
	"github.com/perkshq/perks/internal/ledger"
)

// Cursor is a position in a partner's change feed.
type Cursor struct {
	PartnerID uuid.UUID `json:"p"`
	// From is the lower xid bound of the range being read.
	From uint64 `json:"f"`
	// To, when set, pins the upper bound while a range is read in pages.
	To uint64 `json:"t,omitempty"`
	// After is the last user id of the previous page of the range.
	After *uuid.UUID `json:"a,omitempty"`
}

// Service reads the feed.
type Service struct {
	// Pool serves the export: the primary, or a standby.
	Pool *pgxpool.Pool
	// Primary, when Pool is a standby, reads the pages the standby has
	// not caught up with yet; nil means Pool is the primary.
	Primary *pgxpool.Pool
	Keys    *keyring.Keyring

	// noLanes reads every stream as a cursor of the export's transaction
	// (tests).
	noLanes bool
	// onLanes, when set, is told how many lanes an export opened and the
	// settings they run with (tests).
	onLanes func(lanes int, settings string)
}

// Encode signs a cursor.
func (s *Service) Encode(c Cursor) string {
	b, _ := json.Marshal(c)
	mac := s.Keys.MAC([]byte("export-cursor/v1"), b)
	return base64.RawURLEncoding.EncodeToString(b) + "." + base64.RawURLEncoding.EncodeToString(mac[:16])
}

// Decode verifies a cursor and that it belongs to the partner.
func (s *Service) Decode(partnerID uuid.UUID, token string) (Cursor, error) {
	bad := apperr.Field(apperr.CodeInvalidField, "cursor", "cursor is not a cursor of this export")
	body, sig, ok := strings.Cut(token, ".")
	if !ok {
		return Cursor{}, bad
	}
	b, err1 := base64.RawURLEncoding.DecodeString(body)
	mac, err2 := base64.RawURLEncoding.DecodeString(sig)
	if err1 != nil || err2 != nil {
		return Cursor{}, bad
	}
	want := s.Keys.MAC([]byte("export-cursor/v1"), b)
	if len(mac) != 16 || !hmacEqual(mac, want[:16]) {
		return Cursor{}, bad
	}
	var c Cursor
	if err := json.Unmarshal(b, &c); err != nil || c.PartnerID != partnerID {
		return Cursor{}, bad
	}
	return c, nil
}

func hmacEqual(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	var v byte
	for i := range a {
		v |= a[i] ^ b[i]
	}
	return v == 0
}

// Format of the stream.
type Format int

// Formats.
const (
	NDJSON Format = iota
	CSV
)

// Page describes what a Stream call will write.
type Page struct {
	Next    Cursor
	HasMore bool
}

// Writer receives the stream; Begin is called once before the first row,
// with the page's next cursor, so a transport can send it as a header.
type Writer interface {
	Begin(p Page) error
	io.Writer
}

// Stream writes the users changed after cur (at most limit; 0 = all) to w
// in the format, ending with a cursor line, with memory independent of the
// number of users.
//
// The lines are encoded here from plain columns (feed.go); they are byte
// for byte what PostgreSQL rendered when the feed was one SQL query
// (FeedQuery, kept as the differential test's oracle).
func (s *Service) Stream(ctx context.Context, cur Cursor, limit int, format Format, w Writer) (int, error) {
	pool := s.Pool
	tx, snap, err := s.begin(ctx, pool)
	if err != nil {
		return 0, err
	}
	to := snap.xmin
	if s.Primary != nil && (to < cur.From || to < cur.To) {
		// The standby is behind the cursor: the primary has every row of
		// the range.
		_ = tx.Rollback(ctx)
		pool = s.Primary
		if tx, snap, err = s.begin(ctx, pool); err != nil {
			return 0, err
		}
		to = snap.xmin
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck
	if to < cur.From {
		to = cur.From // nothing new yet; the cursor never moves back
	}
	if cur.To != 0 {
		to = cur.To // finishing a range read in pages
	}
	after := uuid.Nil
	if cur.After != nil {
		after = *cur.After
	}

	// Where does this page end? One cheap pass over the changed ids.
	page := Page{Next: Cursor{PartnerID: cur.PartnerID, From: to}}
	var last *uuid.UUID
	if limit > 0 {
		rows, err := tx.Query(ctx, changedSQL+` SELECT user_id FROM changed ORDER BY user_id OFFSET $5 LIMIT 2`,
			cur.PartnerID, strconv.FormatUint(cur.From, 10), strconv.FormatUint(to, 10), after, limit-1)
		if err != nil {
			return 0, fmt.Errorf("export page bound: %w", err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
		if err != nil {
			return 0, fmt.Errorf("export page bound: %w", err)
		}
		if len(ids) >= 1 {
			last = &ids[0]
		}
		if len(ids) == 2 {
			page = Page{Next: Cursor{PartnerID: cur.PartnerID, From: cur.From, To: to, After: last}, HasMore: true}
		}
	}
	if err := w.Begin(page); err != nil {
		return 0, err
	}

	upper := uuid.Max
	if last != nil {
		upper = *last
	}
	lctx, cancel := context.WithCancel(ctx)
	ss := &streamSet{conn: tx.Conn().PgConn(), cancel: cancel, params: [][]byte{
		[]byte(cur.PartnerID.String()), []byte(strconv.FormatUint(cur.From, 10)), []byte(strconv.FormatUint(to, 10)),
		[]byte(after.String()), []byte(upper.String()),
	}}
	defer ss.close()
	// A first export (from 0) reads every user: its big streams go on
	// lanes. On a standby they stay cursors of the export's transaction:
	// importing a snapshot there is not covered by the standby tests
	// (internal/scale), and a cursor reads the same rows.
	full := cur.From == 0
	// The whole feed in one call (no page bound): its lanes read each
	// table sequentially and sort it, instead of following an index.
	whole := full && limit == 0 && cur.After == nil
	f, err := s.openFeed(lctx, ss, tx, pool, full, full && !snap.recovery && !s.noLanes, whole)
	if err != nil {
		return 0, err
	}

	bw := bufio.NewWriterSize(w, 64<<10)
	if format == CSV {
		if _, err := bw.WriteString(CSVHeader + "\n"); err != nil {
			return 0, err
		}
	}
	n, err := f.write(lctx, bw, format, snap.loc)
	if err != nil {
		return n, fmt.Errorf("export rows: %w", err)
	}
	next := s.Encode(page.Next)
	if format == CSV {
		_, err = fmt.Fprintf(bw, "#cursor,%s,%t,%d\n", next, page.HasMore, n)
	} else {
		_, err = fmt.Fprintf(bw, `{"cursor":%q,"hasMore":%t,"count":%d}`+"\n", next, page.HasMore, n)
	}
	if err != nil {
		return n, err
	}
	return n, bw.Flush()
}

// changedSQL names the users with any row version in [from, to) after a
// user id: $1 partner, $2 from, $3 to, $4 after. Erased users have no rows
// left but their user_erasures marker, which makes them an erasure line.
const changedSQL = `WITH changed AS (
	SELECT id AS user_id FROM users
	WHERE partner_id = $1 AND xid >= $2::xid8 AND xid < $3::xid8 AND id > $4
	UNION
	SELECT user_id FROM ledger_entries
	WHERE partner_id = $1 AND xid >= $2::xid8 AND xid < $3::xid8 AND user_id > $4
	UNION
	SELECT user_id FROM vouchers
	WHERE partner_id = $1 AND xid >= $2::xid8 AND xid < $3::xid8 AND user_id > $4
	UNION
	SELECT user_id FROM user_erasures
	WHERE partner_id = $1 AND xid >= $2::xid8 AND xid < $3::xid8 AND user_id > $4
	UNION
	SELECT user_id FROM user_tiers
	WHERE partner_id = $1 AND xid >= $2::xid8 AND xid < $3::xid8 AND user_id > $4
	UNION
	SELECT user_id FROM referral_codes
	WHERE partner_id = $1 AND xid >= $2::xid8 AND xid < $3::xid8 AND user_id > $4
	UNION
	SELECT referrer_id FROM referrals
	WHERE partner_id = $1 AND xid >= $2::xid8 AND xid < $3::xid8 AND referrer_id > $4
	UNION
	SELECT referee_id FROM referrals
	WHERE partner_id = $1 AND xid >= $2::xid8 AND xid < $3::xid8 AND referee_id > $4
)`

// feedSQL was the feed's one query (now FeedQuery and the test oracle):
// the page's users in id order ($5: last user id of the page). %s is the
// select list of the format.
var feedSQL = changedSQL + `, xp AS (` + expiringSQL + `)
SELECT %s
FROM changed c
LEFT JOIN users u ON u.partner_id = $1 AND u.id = c.user_id
LEFT JOIN balances bl ON bl.partner_id = $1 AND bl.user_id = u.id
LEFT JOIN xp ON xp.user_id = c.user_id
LEFT JOIN LATERAL (
	SELECT coalesce(json_agg(json_build_object(
		'entryId', e.id, 'kind', e.kind, 'action', e.action_code, 'points', e.points,
		'balanceAfter', e.balance_after, 'reason', e.reason, 'reference', e.reference,
		'sourceType', e.source_type, 'sourceId', e.source_id, 'occurredAt', e.occurred_at,
		'breakdown', e.breakdown) ORDER BY e.id), '[]'::json) AS actions
	FROM ledger_entries e
	WHERE e.partner_id = $1 AND e.user_id = u.id AND e.xid >= $2::xid8 AND e.xid < $3::xid8
) a ON true
LEFT JOIN LATERAL (
	SELECT coalesce(json_agg(json_build_object(
		'voucherId', v.id, 'sku', g.sku, 'title', g.title, 'status', v.status, 'costPoints', v.cost_points,
		'claimedAt', v.claimed_at, 'expiresAt', v.expires_at, 'redeemedAt', v.redeemed_at,
		'expiredAt', v.expired_at, 'cancelledAt', v.cancelled_at) ORDER BY v.seq), '[]'::json) AS gifts
	FROM vouchers v JOIN gifts g ON g.partner_id = v.partner_id AND g.id = v.gift_id
	WHERE v.partner_id = $1 AND v.user_id = u.id AND v.xid >= $2::xid8 AND v.xid < $3::xid8
) gv ON true
LEFT JOIN LATERAL (
	SELECT e.balance_after FROM ledger_entries e
	WHERE e.partner_id = $1 AND e.user_id = u.id AND e.xid < $3::xid8
	ORDER BY e.id DESC LIMIT 1
) b ON true
LEFT JOIN LATERAL (
	-- The user's tier code (the base tier without a row; NULL without tiers).
	SELECT coalesce((SELECT ut.code FROM user_tiers ut WHERE ut.partner_id = $1 AND ut.user_id = u.id),
		(SELECT t.code FROM tiers t WHERE t.partner_id = $1 AND t.rank = 0)) AS code
) tr ON true
LEFT JOIN LATERAL (
	-- The user's referral code, who referred them (by code), and the
	-- referrals they made that changed in the range (docs/referrals.md).
	SELECT (SELECT rc.code FROM referral_codes rc WHERE rc.partner_id = $1 AND rc.user_id = u.id) AS code,
		(SELECT rb.code FROM referrals rb WHERE rb.partner_id = $1 AND rb.referee_id = u.id) AS referred_by,
		(SELECT coalesce(json_agg(json_build_object(
			'referralId', r.id, 'refereeUserId', r.referee_id, 'status', r.status, 'referrerPoints', r.referrer_points,
			'createdAt', r.created_at, 'qualifiedAt', r.qualified_at, 'rewardedAt', r.rewarded_at, 'cancelledAt', r.cancelled_at)
			ORDER BY r.id), '[]'::json)
		 FROM referrals r WHERE r.partner_id = $1 AND r.referrer_id = u.id AND r.xid >= $2::xid8 AND r.xid < $3::xid8) AS referrals
) rf ON true
WHERE c.user_id <= $5
ORDER BY c.user_id`

// expiringSQL is the next expiry days of the page's users
// (ledger.ExpiringByUserSQL): part of the feed's one query, one pass over
// their expiring lots joined by user, never a query or a subplan per user.
var expiringSQL = ledger.ExpiringByUserSQL("$1", "SELECT user_id FROM changed WHERE user_id <= $5",
	"(SELECT timezone FROM partners WHERE id = $1)")

// A user's profile is exported only when the user row itself changed in
// the range (else it is null: unchanged), so a profile change is never
// read twice.
const profileChanged = `u.xid >= $2::xid8 AND u.xid < $3::xid8`

// An erased user is one line that says so (erasedMarker): the user and
// their history are gone, so there is nothing else to send. A changed id
// without a users row is always an erased one (ledger entries and vouchers
// go in the erasing transaction), and the marker is read only for those
// rows, so other rows pay nothing for it.
const ndjsonSelect = `CASE WHEN u.id IS NULL THEN ` + erasedMarker + ` ELSE json_build_object(
	'userId', u.id,
	'profile', CASE WHEN ` + profileChanged + ` THEN json_build_object(
		'externalUserId', u.external_id, 'email', u.email, 'displayName', u.display_name,
		'firstName', u.first_name, 'lastName', u.last_name, 'locale', u.locale, 'countryCode', u.country_code,
		'anonymised', u.anonymised_at IS NOT NULL, 'anonymisedAt', u.anonymised_at,
		'createdAt', u.created_at, 'updatedAt', u.updated_at) END,
	'balance', coalesce(b.balance_after, 0),
	'pendingPoints', coalesce(bl.pending_points, 0),
	'lifetimePoints', coalesce(bl.lifetime_earned, 0),
	'expiringPoints', coalesce(xp.expiring, '[]'::json),
	'actions', a.actions,
	'gifts', gv.gifts,
	'tier', tr.code,
	'referralCode', rf.code,
	'referredBy', rf.referred_by,
	'referrals', rf.referrals)::text END`

const erasedMarker = `(SELECT json_build_object('userId', x.user_id, 'erased', true, 'erasedAt', x.erased_at,
	'profile', NULL, 'balance', 0, 'pendingPoints', 0, 'lifetimePoints', 0, 'expiringPoints', '[]'::json,
	'actions', '[]'::json, 'gifts', '[]'::json, 'referrals', '[]'::json)::text
	FROM user_erasures x WHERE x.partner_id = $1 AND x.user_id = c.user_id)`

// CSVHeader names the CSV columns; actions, gifts and expiringPoints are
// JSON arrays. erasedAt, the last column as documented, is set only on an
// erased user's row, whose other columns are empty (balance and the
// lifecycle's points 0, no actions, gifts or expiring points). Columns
// added later (the points lifecycle's, then the tier, then the referral
// columns) were inserted just
// before erasedAt: every older column keeps its position, and erasedAt
// stays last.
const CSVHeader = "userId,profileChanged,externalUserId,email,displayName,firstName,lastName,locale,countryCode,anonymised,anonymisedAt,createdAt,updatedAt,balance,actions,gifts,pendingPoints,lifetimePoints,expiringPoints,tier,referralCode,referredBy,referrals,erasedAt"

func csvField(expr string) string {
	// RFC 4180: quote every field, double inner quotes; NULL is empty.
	return `coalesce('"' || replace((` + expr + `)::text, '"', '""') || '"', '')`
}

// csvText neutralises a text cell a spreadsheet would run as a formula
// (OWASP CSV injection): a value starting with =, +, -, @, tab or carriage
// return gets a leading single quote, which spreadsheets show as text. Only
// the CSV format does this, and only for the partner's free-text columns
// (ids, email, names, locale, country); the JSON columns start with [ and
// NDJSON carries every value unchanged.
func csvText(expr string) string {
	return `(SELECT CASE WHEN left(v, 1) IN ('=', '+', '-', '@', E'\t', E'\r') THEN '''' || v ELSE v END FROM (SELECT (` + expr + `)::text AS v) x)`
}

var csvSelect = strings.Join([]string{
	csvField("c.user_id"),
	csvField("(" + profileChanged + ")"),
	csvField(csvText("CASE WHEN " + profileChanged + " THEN u.external_id END")),
	csvField(csvText("CASE WHEN " + profileChanged + " THEN u.email END")),
	csvField(csvText("CASE WHEN " + profileChanged + " THEN u.display_name END")),
	csvField(csvText("CASE WHEN " + profileChanged + " THEN u.first_name END")),
	csvField(csvText("CASE WHEN " + profileChanged + " THEN u.last_name END")),
	csvField(csvText("CASE WHEN " + profileChanged + " THEN u.locale END")),
	csvField(csvText("CASE WHEN " + profileChanged + " THEN u.country_code END")),
	csvField("CASE WHEN " + profileChanged + " THEN u.anonymised_at IS NOT NULL END"),
	csvField("CASE WHEN " + profileChanged + " THEN to_json(u.anonymised_at)#>>'{}' END"),
	csvField("CASE WHEN " + profileChanged + " THEN to_json(u.created_at)#>>'{}' END"),
	csvField("CASE WHEN " + profileChanged + " THEN to_json(u.updated_at)#>>'{}' END"),
	csvField("coalesce(b.balance_after, 0)"),
	csvField("a.actions"),
	csvField("gv.gifts"),
	csvField("coalesce(bl.pending_points, 0)"),
	csvField("coalesce(bl.lifetime_earned, 0)"),
	csvField("coalesce(xp.expiring, '[]'::json)"),
	csvField("tr.code"),
	csvField("rf.code"),
	csvField("rf.referred_by"),
	csvField("CASE WHEN u.id IS NOT NULL THEN rf.referrals END"),
	csvField("CASE WHEN u.id IS NULL THEN (SELECT to_json(x.erased_at)#>>'{}' FROM user_erasures x WHERE x.partner_id = $1 AND x.user_id = c.user_id) END"),
}, ` || ',' || `)

// FeedQuery returns the NDJSON feed query with its $1..$5 parameters: the
// feed as PostgreSQL rendered it before Stream encoded it in Go. It stays
// as the benchmark's COPY baseline and, with csvSelect, as the oracle of
// the differential test (StreamSQL), which holds the Go encoder to its
// bytes.
func FeedQuery() string { return fmt.Sprintf(feedSQL, ndjsonSelect) }

// snapshot is what begin learns about the export's snapshot.
type snapshot struct {
	// xmin is the upper bound of a new range.
	xmin uint64
	// loc is the session's TimeZone, in which the SQL rendered timestamps.
	loc *time.Location
	// recovery: the server is a standby.
	recovery bool
}

// begin opens the export's read-only snapshot on pool.
func (s *Service) begin(ctx context.Context, pool *pgxpool.Pool) (pgx.Tx, snapshot, error) {
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, snapshot{}, fmt.Errorf("begin export: %w", err)
	}
	if _, err := tx.Exec(ctx, noJIT); err != nil {
		_ = tx.Rollback(ctx)
		return nil, snapshot{}, fmt.Errorf("export settings: %w", err)
	}
	var xmin, zone string
	var snap snapshot
	if err := tx.QueryRow(ctx, "SELECT pg_snapshot_xmin(pg_current_snapshot())::text, current_setting('TimeZone'), pg_is_in_recovery()").
		Scan(&xmin, &zone, &snap.recovery); err != nil {
		_ = tx.Rollback(ctx)
		return nil, snapshot{}, fmt.Errorf("export snapshot: %w", err)
	}
	if snap.xmin, err = strconv.ParseUint(xmin, 10, 64); err != nil {
		_ = tx.Rollback(ctx)
		return nil, snapshot{}, fmt.Errorf("export snapshot xmin %q: %w", xmin, err)
	}
	// A zone name Go does not know (a POSIX rule such as "<+03>-03") is
	// written in UTC: the same instants, another offset.
	if snap.loc, err = time.LoadLocation(zone); err != nil {
		snap.loc = time.UTC
	}
	return tx, snap, nil
}
