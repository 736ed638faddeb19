package earning

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/event"
	"github.com/perkshq/perks/internal/ledger"
	"github.com/perkshq/perks/internal/partner"
)

// ManyItem is one earn of a batch. UserID is uuid.Nil when the caller could
// not resolve the user; Err carries an error found before the batch (bad
// input, unknown user) and makes the item fail with it.
type ManyItem struct {
	UserID     uuid.UUID
	Code       string
	Points     *int64
	Reference  string
	OccurredAt time.Time
	Err        error
}

// ManyResult is the outcome of one item, in input order.
type ManyResult struct {
	EntryID *int64
	// Duplicate is true when the item's reference was already earned (in an
	// earlier call or earlier in this batch): the original entry is returned
	// and nothing new is written.
	Duplicate bool
	Balance   *int64
	Err       *apperr.Error
}

type counterKey struct {
	user uuid.UUID
	code string
}

// EarnManyTx applies many earns in one transaction, set-based: a handful of
// statements whatever the batch size, with the same rules, caps, cooldowns
// and exactly-once references as EarnTx. Items are decided in input order;
// one item's failure never fails the others.
//
// Locks are taken in a fixed order (counter rows by user and code, then
// balance rows by user), after EarnTx's order (counter, then balance), so
// batches and single earns cannot deadlock each other.
//
// References are checked before anything is locked, so a concurrent batch
// (or earn) may insert one of them between the check and the insert: the
// insert then fails on the reference's unique index, after the other
// transaction committed. The batch is undone to a savepoint and decided
// again, now seeing the other's entries: those items become duplicates (or
// conflicts, for another user) and the rest of the batch still earns.
func (s *Service) EarnManyTx(ctx context.Context, tx bun.Tx, p *partner.Partner, items []ManyItem) ([]ManyResult, error) {
	for attempt := 1; ; attempt++ {
		if _, err := tx.ExecContext(ctx, "SAVEPOINT earn_many"); err != nil {
			return nil, fmt.Errorf("savepoint: %w", err)
		}
		res, err := s.earnMany(ctx, tx, p, items)
		if err == nil {
			if _, err := tx.ExecContext(ctx, "RELEASE SAVEPOINT earn_many"); err != nil {
				return nil, fmt.Errorf("release savepoint: %w", err)
			}
			return res, nil
		}
		// Each retry sees at least one more committed reference, so the
		// loop ends; the bound only guards against a bug.
		if !isReferenceTaken(err) || attempt == maxReferenceRetries {
			return nil, err
		}
		if _, rerr := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT earn_many"); rerr != nil {
			return nil, fmt.Errorf("rollback to savepoint: %w (after %w)", rerr, err)
		}
	}
}

// maxReferenceRetries bounds how often a batch is decided again after
// losing a reference race.
const maxReferenceRetries = 10

func isReferenceTaken(err error) bool {
	var e interface {
		SQLState() string
		error
	}
	return errors.As(err, &e) && e.SQLState() == "23505" && strings.Contains(err.Error(), "ledger_entries_reference_idx")
}

func (s *Service) earnMany(ctx context.Context, tx bun.Tx, p *partner.Partner, items []ManyItem) ([]ManyResult, error) {
	now := s.Now().UTC()
	today := s.day(p, now)
	res := make([]ManyResult, len(items))
	fail := func(i int, err error) {
		e := apperr.As(err)
		if e == nil {
			e = apperr.New(apperr.CodeInternal, "internal error")
		}
		res[i] = ManyResult{Err: e}
	}

	// Rules of the batch, in one query.
	codes := map[string]bool{}
	for _, it := range items {
		if it.Err == nil {
			codes[it.Code] = true
		}
	}
	rules := map[string]*Rule{}
	if len(codes) > 0 {
		var rs []Rule
		if err := tx.NewSelect().Model(&rs).Where("partner_id = ? AND code IN (?)", p.ID, bun.List(keys(codes))).Scan(ctx); err != nil {
			return nil, fmt.Errorf("load rules: %w", err)
		}
		for i := range rs {
			rules[rs[i].Code] = &rs[i]
		}
	}

	// Per-item checks that need no lock; references seen before.
	points := make([]int64, len(items))
	var refs []string
	for i, it := range items {
		if it.Err != nil {
			fail(i, it.Err)
			continue
		}
		r := rules[it.Code]
		switch {
		case r == nil:
			fail(i, apperr.New(apperr.CodeActionNotFound, "no earning rule %q", it.Code))
			continue
		case !r.Active(now):
			fail(i, apperr.New(apperr.CodeActionInactive, "action %q is not active", it.Code))
			continue
		}
		points[i] = r.Points
		if it.Points != nil {
			max := ledger.MaxPoints
			if r.MaxPoints != nil {
				max = *r.MaxPoints
			}
			switch {
			case !r.VariablePoints:
				fail(i, apperr.Field(apperr.CodeVariablePointsDenied, "points", "action %q awards a fixed %d points", it.Code, r.Points))
				continue
			case *it.Points < 1 || *it.Points > max:
				fail(i, apperr.Field(apperr.CodePointsOutOfRange, "points", "points must be from 1 to %d for action %q", max, it.Code))
				continue
			}
			points[i] = *it.Points
		}
		if it.Reference != "" {
			refs = append(refs, it.Reference)
		}
	}
	type prior struct {
		Reference string    `bun:"reference"`
		ID        int64     `bun:"id"`
		UserID    uuid.UUID `bun:"user_id"`
	}
	seenRef := map[string]prior{}
	if len(refs) > 0 {
		var ps []prior
		err := tx.NewRaw("SELECT reference, id, user_id FROM ledger_entries WHERE partner_id = ? AND reference = ANY(?)",
			p.ID, pgdialect.Array(refs)).Scan(ctx, &ps)
		if err != nil {
			return nil, fmt.Errorf("load references: %w", err)
		}
		for _, pr := range ps {
			seenRef[pr.Reference] = pr
		}
	}

	// Lock what the batch will change: counter rows (created empty when
	// missing), then balance rows, each in a fixed order.
	var ckeys []counterKey
	userSet := map[uuid.UUID]bool{}
	for i, it := range items {
		if res[i].Err != nil {
			continue
		}
		userSet[it.UserID] = true
		if rules[it.Code].limited() {
			ckeys = append(ckeys, counterKey{it.UserID, it.Code})
		}
	}
	counters := map[counterKey]*Counter{}
	if len(ckeys) > 0 {
		slices.SortFunc(ckeys, func(a, b counterKey) int {
			if c := compareUUID(a.user, b.user); c != 0 {
				return c
			}
			return compareString(a.code, b.code)
		})
		ckeys = slices.Compact(ckeys)
		users := make([]uuid.UUID, len(ckeys))
		cs := make([]string, len(ckeys))
		for i, k := range ckeys {
			users[i], cs[i] = k.user, k.code
		}
		_, err := tx.NewRaw(`INSERT INTO earning_counters (partner_id, user_id, code, total, day, day_count, last_at)
			SELECT ?, u, c, 0, ?, 0, 'epoch' FROM unnest(?::uuid[], ?::text[]) AS t(u, c)
			ORDER BY u, c ON CONFLICT DO NOTHING`, p.ID, today, pgdialect.Array(users), pgdialect.Array(cs)).Exec(ctx)
		if err != nil {
			return nil, fmt.Errorf("create counters: %w", err)
		}
		var rows []Counter
		err = tx.NewRaw(`SELECT c.* FROM earning_counters c JOIN unnest(?::uuid[], ?::text[]) AS t(u, k)
			ON c.partner_id = ? AND c.user_id = t.u AND c.code = t.k ORDER BY c.user_id, c.code FOR UPDATE OF c`,
			pgdialect.Array(users), pgdialect.Array(cs), p.ID).Scan(ctx, &rows)
		if err != nil {
			return nil, fmt.Errorf("lock counters: %w", err)
		}
		for i := range rows {
			counters[counterKey{rows[i].UserID, rows[i].Code}] = &rows[i]
		}
	}
	balances := map[uuid.UUID]*ledger.Balance{}
	if len(userSet) > 0 {
		users := keys(userSet)
		slices.SortFunc(users, compareUUID)
		_, err := tx.NewRaw(`INSERT INTO balances (partner_id, user_id) SELECT ?, u FROM unnest(?::uuid[]) AS u
			ORDER BY u ON CONFLICT DO NOTHING`, p.ID, pgdialect.Array(users)).Exec(ctx)
		if err != nil {
			if isForeignKeyViolation(err) {
				return nil, fmt.Errorf("batch names a user that does not exist: %w", err)
			}
			return nil, fmt.Errorf("create balances: %w", err)
		}
		var rows []ledger.Balance
		err = tx.NewRaw(`SELECT b.* FROM balances b WHERE b.partner_id = ? AND b.user_id = ANY(?::uuid[])
			ORDER BY b.user_id FOR UPDATE`, p.ID, pgdialect.Array(users)).Scan(ctx, &rows)
		if err != nil {
			return nil, fmt.Errorf("lock balances: %w", err)
		}
		for i := range rows {
			balances[rows[i].UserID] = &rows[i]
		}
	}

	// Decide every item in input order against the locked state.
	var accepted []int
	batchRef := map[string]int{} // reference -> accepted item
	dupOf := map[int]int{}       // item -> earlier item of the batch with its reference
	touched := map[counterKey]bool{}
	for i, it := range items {
		if res[i].Err != nil {
			continue
		}
		if it.Reference != "" {
			if pr, ok := seenRef[it.Reference]; ok {
				if pr.UserID != it.UserID {
					fail(i, apperr.Field(apperr.CodeConflict, "reference", "reference %q was already used for another user", it.Reference))
				} else {
					id := pr.ID
					res[i] = ManyResult{EntryID: &id, Duplicate: true}
				}
				continue
			}
			if j, ok := batchRef[it.Reference]; ok {
				if items[j].UserID != it.UserID {
					fail(i, apperr.Field(apperr.CodeConflict, "reference", "reference %q is used by another item for another user", it.Reference))
				} else {
					res[i].Duplicate = true
					dupOf[i] = j
				}
				continue
			}
		}
		b := balances[it.UserID]
		if b.Points+points[i] > ledger.MaxBalance || b.LifetimeEarned+points[i] > ledger.MaxBalance {
			fail(i, apperr.New(apperr.CodePointsOutOfRange, "the balance would exceed the maximum of %d points", ledger.MaxBalance))
			continue
		}
		r := rules[it.Code]
		if r.limited() {
			k := counterKey{it.UserID, it.Code}
			if err := admit(r, counters[k], today, now); err != nil {
				fail(i, err)
				continue
			}
			touched[k] = true
		}
		b.Points += points[i]
		b.LifetimeEarned += points[i]
		bal := b.Points
		res[i].Balance = &bal
		if it.Reference != "" {
			batchRef[it.Reference] = i
		}
		accepted = append(accepted, i)
	}
	if len(accepted) == 0 {
		return res, nil
	}

	// Write: entries (ids allocated up front so results map to input
	// order), balances, counters, events.
	var ids []int64
	if err := tx.NewRaw("SELECT nextval(pg_get_serial_sequence('ledger_entries', 'id')) FROM generate_series(1, ?)", len(accepted)).Scan(ctx, &ids); err != nil {
		return nil, fmt.Errorf("allocate entry ids: %w", err)
	}
	n := len(accepted)
	var (
		eIDs     = make([]int64, n)
		eUsers   = make([]uuid.UUID, n)
		ePoints  = make([]int64, n)
		eAfter   = make([]int64, n)
		eReasons = make([]string, n)
		eCodes   = make([]string, n)
		eRefs    = make([]*string, n)
		eAt      = make([]time.Time, n)
		events   = make([]*event.Event, 0, n)
	)
	for k, i := range accepted {
		it := items[i]
		eIDs[k], eUsers[k], ePoints[k], eAfter[k] = ids[k], it.UserID, points[i], *res[i].Balance
		eReasons[k], eCodes[k] = rules[it.Code].Name, it.Code
		if it.Reference != "" {
			ref := it.Reference
			eRefs[k] = &ref
		}
		eAt[k] = it.OccurredAt
		if eAt[k].IsZero() {
			eAt[k] = now
		}
		id := ids[k]
		res[i].EntryID = &id
		uid := it.UserID
		data, _ := json.Marshal(map[string]any{"userId": uid, "entryId": id, "points": points[i], "balance": *res[i].Balance, "action": it.Code})
		events = append(events, &event.Event{PartnerID: p.ID, ID: uuid.New(), Type: event.PointsEarned, UserID: &uid, Data: data, CreatedAt: now})
	}
	_, err := tx.NewRaw(`INSERT INTO ledger_entries (partner_id, id, user_id, kind, points, balance_after, reason, action_code, reference, occurred_at, created_at)
		OVERRIDING SYSTEM VALUE
		SELECT ?, id, u, 'earn', pts, after, reason, code, ref, at, ?
		FROM unnest(?::bigint[], ?::uuid[], ?::bigint[], ?::bigint[], ?::text[], ?::text[], ?::text[], ?::timestamptz[])
		AS t(id, u, pts, after, reason, code, ref, at)`,
		p.ID, now, pgdialect.Array(eIDs), pgdialect.Array(eUsers), pgdialect.Array(ePoints), pgdialect.Array(eAfter),
		pgdialect.Array(eReasons), pgdialect.Array(eCodes), pgdialect.Array(eRefs), pgdialect.Array(eAt)).Exec(ctx)
	if err != nil {
		return nil, fmt.Errorf("insert %d entries: %w", n, err)
	}

	bUsers := make([]uuid.UUID, 0, len(balances))
	bPoints := make([]int64, 0, len(balances))
	bLife := make([]int64, 0, len(balances))
	for u, b := range balances {
		bUsers, bPoints, bLife = append(bUsers, u), append(bPoints, b.Points), append(bLife, b.LifetimeEarned)
	}
	_, err = tx.NewRaw(`UPDATE balances b SET points = t.pts, lifetime_earned = t.life, updated_at = ?
		FROM unnest(?::uuid[], ?::bigint[], ?::bigint[]) AS t(u, pts, life)
		WHERE b.partner_id = ? AND b.user_id = t.u AND (b.points, b.lifetime_earned) IS DISTINCT FROM (t.pts, t.life)`,
		now, pgdialect.Array(bUsers), pgdialect.Array(bPoints), pgdialect.Array(bLife), p.ID).Exec(ctx)
	if err != nil {
		return nil, fmt.Errorf("update balances: %w", err)
	}

	if len(touched) > 0 {
		var cu []uuid.UUID
		var cc []string
		var ct, cd []int
		var cday []time.Time
		var clast []time.Time
		for k := range touched {
			c := counters[k]
			cu, cc, ct, cd, cday, clast = append(cu, k.user), append(cc, k.code), append(ct, c.Total), append(cd, c.DayCount), append(cday, c.Day), append(clast, c.LastAt)
		}
		_, err = tx.NewRaw(`UPDATE earning_counters c SET total = t.total, day_count = t.dc, day = t.day, last_at = t.last
			FROM unnest(?::uuid[], ?::text[], ?::int[], ?::int[], ?::date[], ?::timestamptz[]) AS t(u, code, total, dc, day, last)
			WHERE c.partner_id = ? AND c.user_id = t.u AND c.code = t.code`,
			pgdialect.Array(cu), pgdialect.Array(cc), pgdialect.Array(ct), pgdialect.Array(cd), pgdialect.Array(cday), pgdialect.Array(clast), p.ID).Exec(ctx)
		if err != nil {
			return nil, fmt.Errorf("update counters: %w", err)
		}
	}
	if err := s.Ledger.Events.RecordTx(ctx, tx, events...); err != nil {
		return nil, err
	}
	for i, j := range dupOf {
		res[i].EntryID = res[j].EntryID
	}
	return res, nil
}

// admit applies one earn to a locked counter in memory, or says which limit
// refuses it; it mirrors the conditional upsert of count.
func admit(r *Rule, c *Counter, today, now time.Time) error {
	sameToday := sameDay(c.Day, today)
	switch {
	case r.LifetimeCap != nil && c.Total >= *r.LifetimeCap:
		return apperr.New(apperr.CodeLifetimeCapReached, "action %q can be earned %d times in total", r.Code, *r.LifetimeCap)
	case r.DailyCap != nil && sameToday && c.DayCount >= *r.DailyCap:
		return apperr.New(apperr.CodeDailyCapReached, "action %q can be earned %d times a day", r.Code, *r.DailyCap)
	case r.CooldownSeconds != nil && c.LastAt.After(now.Add(-time.Duration(*r.CooldownSeconds)*time.Second)):
		wait := c.LastAt.Add(time.Duration(*r.CooldownSeconds) * time.Second).Sub(now)
		return &apperr.Error{Code: apperr.CodeCooldown, Message: fmt.Sprintf("action %q can be earned again in %d seconds", r.Code, ceilSeconds(wait)), RetryAfterSeconds: ceilSeconds(wait)}
	}
	c.Total++
	if sameToday {
		c.DayCount++
	} else {
		c.DayCount = 1
	}
	c.Day, c.LastAt = today, now
	return nil
}

func keys[K comparable, V any](m map[K]V) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func compareUUID(a, b uuid.UUID) int {
	for i := range a {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

func compareString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
