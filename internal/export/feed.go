package export

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/perkshq/perks/internal/ledger"
)

// The feed's streams. Parameters: $1 partner, $2 from, $3 to (xid8 text),
// $4 the last user id of the previous page, $5 the last user id of this
// page. Every stream is ordered by user id, then as the line lists it;
// the "many" streams (entries, vouchers) follow their (partner_id,
// user_id, ... DESC) index and are reversed per user here, so none of them
// sorts. %[1]s is the stream's user filter: nothing for a full export (the
// first, from 0: every user is read anyway), the changed set for an
// incremental one (each stream then reads only the changed users' rows).
//
// What makes a user part of the feed (changedSQL) is recomputed from the
// streams: a user is written when any of their rows has an xid in range,
// which each stream says (the in-range column, or a stream that holds
// only rows in range). Rows out of range still give the line its values
// (a tier, a code, the profile of a user whose entries changed).
const (
	usersStream = `SELECT u.id, (u.xid >= $2::xid8 AND u.xid < $3::xid8), u.external_id, u.email, u.display_name,
	u.first_name, u.last_name, u.locale, u.country_code, u.anonymised_at, u.created_at, u.updated_at
FROM users u WHERE u.partner_id = $1 AND u.id > $4 AND u.id <= $5 %[1]s ORDER BY u.id`
	balancesStream = `SELECT b.user_id, b.pending_points, b.lifetime_earned
FROM balances b WHERE b.partner_id = $1 AND b.user_id > $4 AND b.user_id <= $5 %[1]s ORDER BY b.user_id`
	// Only the entries in range: in a full export (from 0) that is every
	// entry below to, so the newest gives the balance too.
	entriesStream = `SELECT e.user_id, e.id, e.kind, e.action_code, e.points, e.balance_after, e.reason, e.reference,
	e.source_type, e.source_id, e.occurred_at, e.breakdown::text
FROM ledger_entries e WHERE e.partner_id = $1 AND e.user_id > $4 AND e.user_id <= $5
	AND e.xid >= $2::xid8 AND e.xid < $3::xid8 ORDER BY e.user_id, e.id DESC`
	// The balance of an incremental export: the changed users' newest
	// entry below to (it may be older than from).
	balanceStream = `SELECT c.user_id, (SELECT e.balance_after FROM ledger_entries e
	WHERE e.partner_id = $1 AND e.user_id = c.user_id AND e.xid < $3::xid8 ORDER BY e.id DESC LIMIT 1)
FROM changed c WHERE c.user_id <= $5 ORDER BY c.user_id`
	vouchersStream = `SELECT v.user_id, v.id, g.sku, g.title, v.status, v.cost_points, v.claimed_at, v.expires_at,
	v.redeemed_at, v.expired_at, v.cancelled_at
FROM vouchers v CROSS JOIN LATERAL (SELECT g.sku, g.title FROM gifts g WHERE g.partner_id = v.partner_id AND g.id = v.gift_id) g
WHERE v.partner_id = $1 AND v.user_id > $4 AND v.user_id <= $5 AND v.xid >= $2::xid8 AND v.xid < $3::xid8
ORDER BY v.user_id, v.seq DESC`
	tiersStream = `SELECT t.user_id, t.code, (t.xid >= $2::xid8 AND t.xid < $3::xid8)
FROM user_tiers t WHERE t.partner_id = $1 AND t.user_id > $4 AND t.user_id <= $5 %[1]s ORDER BY t.user_id`
	codesStream = `SELECT rc.user_id, rc.code, (rc.xid >= $2::xid8 AND rc.xid < $3::xid8)
FROM referral_codes rc WHERE rc.partner_id = $1 AND rc.user_id > $4 AND rc.user_id <= $5 %[1]s ORDER BY rc.user_id`
	refereeStream = `SELECT r.referee_id, r.code, (r.xid >= $2::xid8 AND r.xid < $3::xid8)
FROM referrals r WHERE r.partner_id = $1 AND r.referee_id > $4 AND r.referee_id <= $5 %[1]s ORDER BY r.referee_id`
	referrerStream = `SELECT r.referrer_id, r.id, r.referee_id, r.status, r.referrer_points, r.created_at, r.qualified_at,
	r.rewarded_at, r.cancelled_at
FROM referrals r WHERE r.partner_id = $1 AND r.referrer_id > $4 AND r.referrer_id <= $5
	AND r.xid >= $2::xid8 AND r.xid < $3::xid8 ORDER BY r.referrer_id, r.id`
	erasuresStream = `SELECT x.user_id, x.erased_at, (x.xid >= $2::xid8 AND x.xid < $3::xid8)
FROM user_erasures x WHERE x.partner_id = $1 AND x.user_id > $4 AND x.user_id <= $5 %[1]s ORDER BY x.user_id`
)

// expiringStream is ledger.ExpiringByUserSQL's rows before their
// json_agg: the next ExpiringLimit expiry days of each user (partner's
// time zone), in order.
var expiringStream = `SELECT x.user_id, x.points::bigint, x.expires_at FROM (
	SELECT d.user_id, d.points, d.expires_at, row_number() OVER (PARTITION BY d.user_id ORDER BY d.expires_at) AS rn
	FROM (
		SELECT l.user_id, sum(l.remaining) AS points, min(l.expires_at) AS expires_at
		FROM point_lots l
		WHERE l.partner_id = $1 AND l.open AND NOT l.pending AND l.expires_at IS NOT NULL
		  AND l.user_id > $4 AND l.user_id <= $5 %[1]s
		GROUP BY l.user_id, ((l.expires_at - interval '1 microsecond') AT TIME ZONE (SELECT timezone FROM partners WHERE id = $1))::date
	) d
) x
WHERE x.rn <= ` + strconv.Itoa(ledger.ExpiringLimit) + `
ORDER BY x.user_id, x.expires_at`

// filter restricts a stream to the changed users (incremental exports).
func filter(col string) string {
	return "AND " + col + " IN (SELECT user_id FROM changed WHERE user_id <= $5)"
}

// feed is one export's streams; nil for a stream the mode does not read.
type feed struct {
	users, balances, entries, balance, vouchers, tiers, codes, referee, referrer, expiring, erasures *stream
	all                                                                                              []*stream
	// full: from is 0, so the entries stream holds every entry below to
	// and gives the balance.
	full bool
	// baseTier is the partner's base tier code (nil without tiers): the
	// tier of a user without a user_tiers row.
	baseTier []byte
}

// openFeed declares the streams in tx. A full export on the primary reads
// its big streams on lanes when the pool has idle connections; whole (the
// entire feed, no page bound) has the lanes scan and sort (sortedLanes).
func (s *Service) openFeed(ctx context.Context, ss *streamSet, tx pgx.Tx, pool *pgxpool.Pool, full, lanes, whole bool) (*feed, error) {
	f := &feed{full: full}
	var base *string
	err := tx.QueryRow(ctx, `SELECT code FROM tiers WHERE partner_id = $1 AND rank = 0`, string(ss.params[0])).Scan(&base)
	if err != nil && err != pgx.ErrNoRows {
		return nil, fmt.Errorf("export base tier: %w", err)
	}
	if base != nil {
		f.baseTier = []byte(*base)
	}

	q := func(sql, col string) string {
		if full {
			return fmt.Sprintf(sql, "")
		}
		return changedSQL + " " + fmt.Sprintf(sql, filter(col))
	}
	type def struct {
		dst   **stream
		sql   string
		ncols int
		big   bool
	}
	defs := []def{
		{&f.users, q(usersStream, "u.id"), 12, true},
		{&f.balances, q(balancesStream, "b.user_id"), 3, true},
		{&f.entries, entriesStream, 12, true},
		{&f.vouchers, vouchersStream, 11, false},
		{&f.tiers, q(tiersStream, "t.user_id"), 3, false},
		{&f.codes, q(codesStream, "rc.user_id"), 3, false},
		{&f.referee, q(refereeStream, "r.referee_id"), 3, false},
		{&f.referrer, referrerStream, 9, false},
		{&f.expiring, q(expiringStream, "l.user_id"), 3, false},
		{&f.erasures, q(erasuresStream, "x.user_id"), 3, false},
	}
	if !full {
		defs = append(defs, def{&f.balance, changedSQL + " " + balanceStream, 2, false})
	}
	var conns []*pgxpool.Conn
	if lanes {
		var snap string
		if err := tx.QueryRow(ctx, "SELECT pg_export_snapshot()").Scan(&snap); err != nil {
			return nil, fmt.Errorf("export snapshot: %w", err)
		}
		if strings.Trim(snap, "0123456789ABCDEF-") == "" {
			big := 0
			for _, d := range defs {
				if d.big {
					big++
				}
			}
			settings := noJIT
			if whole {
				settings += "; " + sortedLanes
			}
			conns = openLanes(ctx, pool, snap, big, settings)
			if s.onLanes != nil {
				s.onLanes(len(conns), settings)
			}
		}
	}
	for _, d := range defs {
		var st *stream
		if d.big && len(conns) > 0 {
			st, conns = ss.lane(ctx, conns[0], d.sql, d.ncols), conns[1:]
		} else {
			var err error
			if st, err = ss.local(ctx, d.sql, d.ncols); err != nil {
				return nil, err
			}
		}
		*d.dst = st
		f.all = append(f.all, st)
	}
	return f, nil
}

// write merges the streams and writes every changed user's line; n lines.
func (f *feed) write(ctx context.Context, bw *bufio.Writer, format Format, loc *time.Location) (int, error) {
	j := &jsonw{loc: loc}
	var acts, gifts, exp, refs []byte
	c := &csvw{loc: loc}
	n := 0
	for {
		var id []byte
		for _, st := range f.all {
			h, err := st.head(ctx)
			if err != nil {
				return n, err
			}
			if h != nil && (id == nil || bytes.Compare(h, id) < 0) {
				id = h
			}
		}
		if id == nil {
			break
		}
		var key [16]byte
		copy(key[:], id)
		for _, st := range f.all {
			if err := st.gather(ctx, key[:]); err != nil {
				return n, err
			}
		}
		changed := f.entries.n > 0 || f.vouchers.n > 0 || f.referrer.n > 0 ||
			(f.users.n > 0 && boolOf(f.users.row(0)[1])) ||
			(f.tiers.n > 0 && boolOf(f.tiers.row(0)[2])) ||
			(f.codes.n > 0 && boolOf(f.codes.row(0)[2])) ||
			(f.referee.n > 0 && boolOf(f.referee.row(0)[2])) ||
			(f.erasures.n > 0 && boolOf(f.erasures.row(0)[2])) ||
			(f.balance != nil && f.balance.n > 0)
		if !changed {
			continue
		}

		// The JSON arrays, shared by both formats.
		acts = f.actions(j, acts[:0])
		gifts = f.gifts(j, gifts[:0])
		exp = f.expiringPoints(j, exp[:0])
		refs = f.referrals(j, refs[:0])

		var line []byte
		if format == CSV {
			c.b, c.first = c.b[:0], true
			f.csvLine(c, key[:], acts, gifts, exp, refs)
			line = c.b
		} else {
			j.b = j.b[:0]
			f.ndjsonLine(j, key[:], acts, gifts, exp, refs)
			line = j.b
		}
		if _, err := bw.Write(line); err != nil {
			return n, err
		}
		if err := bw.WriteByte('\n'); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// balanceOf is the balance of the user gathered: their newest entry below
// to (0 without one).
func (f *feed) balanceOf() int64 {
	if f.full {
		if f.entries.n > 0 {
			return int8Of(f.entries.row(0)[5]) // newest first
		}
		return 0
	}
	if f.balance.n > 0 && f.balance.row(0)[1] != nil {
		return int8Of(f.balance.row(0)[1])
	}
	return 0
}

// array builds a JSON array of the gathered rows of st with elem, in the
// stream's order or reversed (the DESC streams).
func array(j *jsonw, dst []byte, st *stream, reverse bool, elem func(j *jsonw, r [][]byte)) []byte {
	saved := j.b
	j.b = dst
	j.open('[')
	for i := 0; i < st.n; i++ {
		k := i
		if reverse {
			k = st.n - 1 - i
		}
		j.elem()
		elem(j, st.row(k))
	}
	j.close(']')
	out := j.b
	j.b = saved
	return out
}

func (f *feed) actions(j *jsonw, dst []byte) []byte {
	return array(j, dst, f.entries, true, func(j *jsonw, r [][]byte) {
		j.open('{')
		j.key("entryId")
		j.int8(r[1])
		j.key("kind")
		j.text(r[2])
		j.key("action")
		j.text(r[3])
		j.key("points")
		j.int8(r[4])
		j.key("balanceAfter")
		j.int8(r[5])
		j.key("reason")
		j.text(r[6])
		j.key("reference")
		j.text(r[7])
		j.key("sourceType")
		j.text(r[8])
		j.key("sourceId")
		j.text(r[9])
		j.key("occurredAt")
		j.time(r[10])
		j.key("breakdown")
		j.raw(r[11])
		j.close('}')
	})
}

func (f *feed) gifts(j *jsonw, dst []byte) []byte {
	return array(j, dst, f.vouchers, true, func(j *jsonw, r [][]byte) {
		j.open('{')
		j.key("voucherId")
		j.uuid(r[1])
		j.key("sku")
		j.text(r[2])
		j.key("title")
		j.text(r[3])
		j.key("status")
		j.text(r[4])
		j.key("costPoints")
		j.int8(r[5])
		j.key("claimedAt")
		j.time(r[6])
		j.key("expiresAt")
		j.time(r[7])
		j.key("redeemedAt")
		j.time(r[8])
		j.key("expiredAt")
		j.time(r[9])
		j.key("cancelledAt")
		j.time(r[10])
		j.close('}')
	})
}

func (f *feed) expiringPoints(j *jsonw, dst []byte) []byte {
	return array(j, dst, f.expiring, false, func(j *jsonw, r [][]byte) {
		j.open('{')
		j.key("points")
		j.int8(r[1])
		j.key("expiresAt")
		j.time(r[2])
		j.close('}')
	})
}

func (f *feed) referrals(j *jsonw, dst []byte) []byte {
	return array(j, dst, f.referrer, false, func(j *jsonw, r [][]byte) {
		j.open('{')
		j.key("referralId")
		j.int8(r[1])
		j.key("refereeUserId")
		j.uuid(r[2])
		j.key("status")
		j.text(r[3])
		j.key("referrerPoints")
		j.int8(r[4])
		j.key("createdAt")
		j.time(r[5])
		j.key("qualifiedAt")
		j.time(r[6])
		j.key("rewardedAt")
		j.time(r[7])
		j.key("cancelledAt")
		j.time(r[8])
		j.close('}')
	})
}

// one is the single gathered row's column i, nil without a row.
func one(st *stream, i int) []byte {
	if st.n == 0 {
		return nil
	}
	return st.row(0)[i]
}

func (f *feed) ndjsonLine(j *jsonw, id, acts, gifts, exp, refs []byte) {
	if f.users.n == 0 {
		// An erased user (erasedMarker); without a marker the SQL's line
		// was NULL, an empty line.
		if f.erasures.n == 0 {
			return
		}
		j.open('{')
		j.key("userId")
		j.uuid(id)
		j.key("erased")
		j.bool(true)
		j.key("erasedAt")
		j.time(one(f.erasures, 1))
		j.b = append(j.b, `, "profile" : null, "balance" : 0, "pendingPoints" : 0, "lifetimePoints" : 0, "expiringPoints" : [], "actions" : [], "gifts" : [], "referrals" : []`...)
		j.close('}')
		return
	}
	u := f.users.row(0)
	j.open('{')
	j.key("userId")
	j.uuid(id)
	j.key("profile")
	if boolOf(u[1]) {
		j.open('{')
		j.key("externalUserId")
		j.text(u[2])
		j.key("email")
		j.text(u[3])
		j.key("displayName")
		j.text(u[4])
		j.key("firstName")
		j.text(u[5])
		j.key("lastName")
		j.text(u[6])
		j.key("locale")
		j.text(u[7])
		j.key("countryCode")
		j.text(u[8])
		j.key("anonymised")
		j.bool(u[9] != nil)
		j.key("anonymisedAt")
		j.time(u[9])
		j.key("createdAt")
		j.time(u[10])
		j.key("updatedAt")
		j.time(u[11])
		j.close('}')
	} else {
		j.null()
	}
	j.key("balance")
	j.int(f.balanceOf())
	j.key("pendingPoints")
	j.int(f.int8Or0(f.balances, 1))
	j.key("lifetimePoints")
	j.int(f.int8Or0(f.balances, 2))
	j.key("expiringPoints")
	j.raw(exp)
	j.key("actions")
	j.raw(acts)
	j.key("gifts")
	j.raw(gifts)
	j.key("tier")
	j.text(f.tier(true))
	j.key("referralCode")
	j.text(one(f.codes, 1))
	j.key("referredBy")
	j.text(one(f.referee, 1))
	j.key("referrals")
	j.raw(refs)
	j.close('}')
}

func (f *feed) int8Or0(st *stream, i int) int64 {
	if v := one(st, i); v != nil {
		return int8Of(v)
	}
	return 0
}

// tier is the user's tier code, or the base tier's without a row (the
// CSV line of an erased user has the base tier too: the SQL's coalesce
// looked for the tier row of a missing user).
func (f *feed) tier(user bool) []byte {
	if v := one(f.tiers, 1); v != nil && user {
		return v
	}
	return f.baseTier
}

func (f *feed) csvLine(c *csvw, id, acts, gifts, exp, refs []byte) {
	c.uuid(id)
	if f.users.n == 0 {
		// Erased: only the id, the zeros and empty arrays the SQL's
		// coalesces gave, the base tier, and erasedAt.
		for i := 0; i < 12; i++ {
			c.null()
		}
		zero := []byte("0")
		c.plain(zero)
		c.plain([]byte("[]"))
		c.plain([]byte("[]"))
		c.plain(zero)
		c.plain(zero)
		c.plain(exp)
		c.plain(f.tier(false))
		c.null()
		c.null()
		c.null()
		c.time(one(f.erasures, 1))
		return
	}
	u := f.users.row(0)
	if changed := boolOf(u[1]); changed {
		c.bool(true)
		for i := 2; i <= 8; i++ {
			c.text(u[i])
		}
		c.bool(u[9] != nil)
		c.time(u[9])
		c.time(u[10])
		c.time(u[11])
	} else {
		c.bool(false)
		for i := 0; i < 11; i++ {
			c.null()
		}
	}
	c.int(f.balanceOf())
	c.plain(acts)
	c.plain(gifts)
	c.int(f.int8Or0(f.balances, 1))
	c.int(f.int8Or0(f.balances, 2))
	c.plain(exp)
	c.plain(f.tier(true))
	c.plain(one(f.codes, 1))
	c.plain(one(f.referee, 1))
	c.plain(refs)
	c.null()
}
