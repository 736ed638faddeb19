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
	"github.com/perkshq/perks/internal/program"
	"github.com/perkshq/perks/internal/user"
)

// ManyItem is one earn of a batch: the same request as one earn, checked
// with Validate by the caller when it is made (a bulk job checks its items
// when it is stored, long before they run).
type ManyItem struct {
	EarnParams
	// UserHash names the user of an item kept without its external id (a
	// stored bulk job item): the keyed hash of ExternalUserID
	// (user.Service.ExternalIDHash). CreateUser is not supported in
	// batches: an unknown user fails its item.
	UserHash []byte
	// Err is an error found before the batch (the item's own bad input): the
	// item fails with it and nothing else is checked.
	Err error
	// Resolved says the caller already read the item's user by UserHash
	// (a bulk job joins them to its items when it loads a chunk, saving a
	// statement): User is that user (its id and anonymised_at suffice), or
	// nil when no user has the hash (USER_NOT_FOUND). Refused like any
	// other item when anonymised.
	Resolved bool
	User     *user.User
}

// ManyResult is the outcome of one item, in input order.
type ManyResult struct {
	EntryID *int64
	// Duplicate is true when the item's reference was already earned (in an
	// earlier call or earlier in this batch): the original entry is returned
	// and nothing new is written.
	Duplicate bool
	Balance   *int64
	// Breakdown is how the item's points were computed (nil for a
	// duplicate or a failed item).
	Breakdown *Breakdown
	Err       *apperr.Error
}

type counterKey struct {
	user uuid.UUID
	code string
}

// EarnManyTx applies many earns in one transaction, set-based: a handful of
// statements whatever the batch size, with the same rules, caps, cooldowns
// and exactly-once references as EarnTx, and the same refusal of unknown
// and anonymised users. Items are decided in input order; one item's
// failure never fails the others.
//
// A batch runs in phases, each a function below: resolve users, load
// rules, pre-check (no lock), load references, lock (counter rows by user
// and code, then balance rows by user: EarnTx's order, counter then
// balance, so batches and single earns cannot deadlock each other), decide
// (in memory, against the locked rows) and write.
//
// References are not read before the first attempt: almost every batch
// brings new ones, and the entries' insert probes the reference's unique
// index anyway. An accepted item whose reference the ledger already holds
// (a resent batch, or a concurrent batch or earn that inserted it first)
// fails that insert; an item refused in decide (a cap, say) whose
// reference the ledger holds would have been a duplicate instead, so those
// few references are read after decide. Either way the attempt is undone to
// a savepoint and the batch decided again, now reading every reference
// first (loadReferences): those items become duplicates (or conflicts, for
// another user) and the rest of the batch still earns. A resent batch
// therefore costs one wasted attempt; a new one saves the lookup.
func (s *Service) EarnManyTx(ctx context.Context, tx bun.Tx, p *partner.Partner, items []ManyItem) ([]ManyResult, error) {
	items = slices.Clone(items)
	if err := s.resolveUsers(ctx, tx, p.ID, items); err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		if _, err := tx.ExecContext(ctx, "SAVEPOINT earn_many"); err != nil {
			return nil, fmt.Errorf("savepoint: %w", err)
		}
		res, err := s.earnMany(ctx, tx, p, items, attempt > 1)
		if err == nil {
			if _, err := tx.ExecContext(ctx, "RELEASE SAVEPOINT earn_many"); err != nil {
				return nil, fmt.Errorf("release savepoint: %w", err)
			}
			return res, nil
		}
		// The second attempt reads every reference, and each later one
		// sees at least one more committed reference, so the loop ends;
		// the bound only guards against a bug.
		if !(isReferenceTaken(err) || errors.Is(err, errPriorReference)) || attempt == maxReferenceRetries {
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

// errPriorReference ends an attempt that did not read the references
// when an item it refused holds a reference the ledger already has (that
// item is a duplicate, which can change how the items after it decide).
var errPriorReference = errors.New("a refused item's reference is in the ledger")

func isReferenceTaken(err error) bool {
	var e interface {
		SQLState() string
		error
	}
	return errors.As(err, &e) && e.SQLState() == "23505" && strings.Contains(err.Error(), "ledger_entries_reference_idx")
}

// batch is one attempt at a batch: what each phase finds, for the next.
type batch struct {
	p          *partner.Partner
	items      []ManyItem
	now, today time.Time
	res        []ManyResult
	// points each item awards, once decided (its breakdown's total), and
	// the base each pre-checked item computes from.
	points []int64
	bases  []Base
	// The partner's program policy, loaded once per attempt, and the
	// partner's time zone: they date each item's lot (program.Resolve).
	policy program.Policy
	loc    *time.Location
	// parts are the program parts the partner uses, read once per
	// attempt: an item's modifiers (and their savepoint) run only for
	// parts in use.
	parts ProgramParts
	// Each accepted item's lot dates, set by decide.
	availableAt []time.Time
	expiresAt   []*time.Time
	held        []bool // held until confirmed: no date
	rules       map[string]*Rule
	// prior holds the references the ledger already has.
	prior    map[string]priorEntry
	counters map[counterKey]*Counter
	balances map[uuid.UUID]*ledger.Balance
	// What decide accepted, in input order; the items that repeat an
	// accepted item's reference (item -> that item); the counters changed.
	accepted []int
	dupOf    map[int]int
	touched  map[counterKey]bool
}

// priorEntry is a ledger entry that already holds a reference of the batch.
type priorEntry struct {
	Reference string    `bun:"reference"`
	ID        int64     `bun:"id"`
	UserID    uuid.UUID `bun:"user_id"`
}

// fail records item i's refusal (an unexpected error becomes INTERNAL,
// its detail left to the caller's logs).
func (b *batch) fail(i int, err error) {
	e := apperr.As(err)
	if e == nil {
		e = apperr.New(apperr.CodeInternal, "internal error")
	}
	b.res[i] = ManyResult{Err: e}
}

// earnMany is one attempt at the batch, phase by phase; without
// checkRefs it does not read the references first (see EarnManyTx).
func (s *Service) earnMany(ctx context.Context, tx bun.Tx, p *partner.Partner, items []ManyItem, checkRefs bool) ([]ManyResult, error) {
	now := s.Now().UTC()
	b := &batch{p: p, items: items, now: now, today: s.day(p, now),
		res: make([]ManyResult, len(items)), points: make([]int64, len(items)), bases: make([]Base, len(items)), loc: p.Location(),
		availableAt: make([]time.Time, len(items)), expiresAt: make([]*time.Time, len(items)), held: make([]bool, len(items))}
	if err := b.loadRules(ctx, tx); err != nil {
		return nil, err
	}
	var err error
	if b.policy, err = s.policy(ctx, tx, p.ID); err != nil {
		return nil, err
	}
	if b.parts, err = partsOf(ctx, tx, p.ID); err != nil {
		return nil, err
	}
	refs := b.precheck()
	if !checkRefs {
		refs = nil
	}
	if err := b.loadReferences(ctx, tx, refs); err != nil {
		return nil, err
	}
	if err := b.lockCounters(ctx, tx); err != nil {
		return nil, err
	}
	if err := b.lockBalances(ctx, tx); err != nil {
		return nil, err
	}
	// The items with a reference still open after precheck: if decide
	// refuses one of them, its reference is checked below.
	var open []int
	if !checkRefs {
		for i, it := range b.items {
			if it.Reference != nil && b.res[i].Err == nil {
				open = append(open, i)
			}
		}
	}
	if err := s.decide(ctx, tx, b); err != nil {
		return nil, err
	}
	if err := b.checkRefused(ctx, tx, open); err != nil {
		return nil, err
	}
	if len(b.accepted) == 0 {
		return b.res, nil
	}
	if err := s.write(ctx, tx, b); err != nil {
		return nil, err
	}
	return b.res, nil
}

// resolveUsers names every item's user by id, in one query: an item named
// by its external id or that id's hash is looked up; an unknown user fails
// the item with USER_NOT_FOUND, an anonymised one with USER_ANONYMISED
// (earnable). Items named by UserID are taken as they are. It runs once,
// before the attempts: users are not what a lost reference race changes.
func (s *Service) resolveUsers(ctx context.Context, tx bun.Tx, partnerID uuid.UUID, items []ManyItem) error {
	hashes := make([][]byte, len(items)) // per item; nil: nothing to look up
	var lookup [][]byte
	for i := range items {
		it := &items[i]
		if it.Err != nil || it.UserID != uuid.Nil {
			continue
		}
		if it.Resolved {
			switch u := it.User; {
			case u == nil:
				it.Err = apperr.New(apperr.CodeUserNotFound, "user not found")
			case earnable(u) != nil:
				it.Err = earnable(u)
			default:
				it.UserID = u.ID
			}
			continue
		}
		hashes[i] = it.UserHash
		if hashes[i] == nil {
			hashes[i] = s.Users.ExternalIDHash(partnerID, it.ExternalUserID)
		}
		lookup = append(lookup, hashes[i])
	}
	users, err := s.Users.ByHashes(ctx, tx, partnerID, lookup)
	if err != nil {
		return err
	}
	for i, h := range hashes {
		if h == nil {
			continue
		}
		switch u := users[string(h)]; {
		case u == nil:
			items[i].Err = apperr.New(apperr.CodeUserNotFound, "user not found")
		case earnable(u) != nil:
			items[i].Err = earnable(u)
		default:
			items[i].UserID = u.ID
		}
	}
	return nil
}

// loadRules loads every rule the batch names, in one query.
func (b *batch) loadRules(ctx context.Context, tx bun.Tx) error {
	codes := map[string]bool{}
	for _, it := range b.items {
		if it.Err == nil {
			codes[it.Code] = true
		}
	}
	b.rules = map[string]*Rule{}
	if len(codes) == 0 {
		return nil
	}
	var rs []Rule
	if err := tx.NewSelect().Model(&rs).Where("partner_id = ? AND code IN (?)", b.p.ID, bun.List(keys(codes))).Scan(ctx); err != nil {
		return fmt.Errorf("load rules: %w", err)
	}
	for i := range rs {
		b.rules[rs[i].Code] = &rs[i]
	}
	return nil
}

// precheck fails, before anything is locked, the items no lock can save:
// errors found before the batch, unknown rules, and the rule's own checks
// (Rule.decide: inactive, points or amount it refuses). It records each
// remaining item's base and returns their references.
func (b *batch) precheck() []string {
	var refs []string
	for i, it := range b.items {
		if it.Err != nil {
			b.fail(i, it.Err)
			continue
		}
		r := b.rules[it.Code]
		if r == nil {
			b.fail(i, apperr.New(apperr.CodeActionNotFound, "no earning rule %q", it.Code))
			continue
		}
		if err := r.decide(&b.items[i].EarnParams, b.now); err != nil {
			b.fail(i, err)
			continue
		}
		b.bases[i] = r.base(&b.items[i].EarnParams, b.policy.Currency)
		if it.Reference != nil {
			refs = append(refs, *it.Reference)
		}
	}
	return refs
}

// loadReferences finds, in one query, which of refs the ledger already
// holds and for which user (see EarnManyTx for the race this leaves open
// and how the retry closes it).
func (b *batch) loadReferences(ctx context.Context, tx bun.Tx, refs []string) error {
	b.prior = map[string]priorEntry{}
	if len(refs) == 0 {
		return nil
	}
	var ps []priorEntry
	err := tx.NewRaw("SELECT reference, id, user_id FROM ledger_entries WHERE partner_id = ? AND reference = ANY(?)",
		b.p.ID, pgdialect.Array(refs)).Scan(ctx, &ps)
	if err != nil {
		return fmt.Errorf("load references: %w", err)
	}
	for _, pr := range ps {
		b.prior[pr.Reference] = pr
	}
	return nil
}

// checkRefused reads the references of the items of open that decide
// refused, and answers errPriorReference when the ledger holds one of them.
// The accepted items' references need no read: their insert fails on the
// unique index if the ledger holds them.
func (b *batch) checkRefused(ctx context.Context, tx bun.Tx, open []int) error {
	var refs []string
	for _, i := range open {
		if b.res[i].Err != nil {
			refs = append(refs, *b.items[i].Reference)
		}
	}
	if len(refs) == 0 {
		return nil
	}
	if err := b.loadReferences(ctx, tx, refs); err != nil {
		return err
	}
	if len(b.prior) > 0 {
		return errPriorReference
	}
	return nil
}

// lockCounters locks the counter rows of the items' limited rules (created
// empty when missing), ordered by user and code.
func (b *batch) lockCounters(ctx context.Context, tx bun.Tx) error {
	var ckeys []counterKey
	for i, it := range b.items {
		if b.res[i].Err == nil && b.rules[it.Code].limited() {
			ckeys = append(ckeys, counterKey{it.UserID, it.Code})
		}
	}
	b.counters = map[counterKey]*Counter{}
	if len(ckeys) == 0 {
		return nil
	}
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
		ORDER BY u, c ON CONFLICT DO NOTHING`, b.p.ID, b.today, pgdialect.Array(users), pgdialect.Array(cs)).Exec(ctx)
	if err != nil {
		return fmt.Errorf("create counters: %w", err)
	}
	var rows []Counter
	err = tx.NewRaw(`SELECT c.* FROM earning_counters c JOIN unnest(?::uuid[], ?::text[]) AS t(u, k)
		ON c.partner_id = ? AND c.user_id = t.u AND c.code = t.k ORDER BY c.user_id, c.code FOR UPDATE OF c`,
		pgdialect.Array(users), pgdialect.Array(cs), b.p.ID).Scan(ctx, &rows)
	if err != nil {
		return fmt.Errorf("lock counters: %w", err)
	}
	for i := range rows {
		b.counters[counterKey{rows[i].UserID, rows[i].Code}] = &rows[i]
	}
	return nil
}

// lockBalances locks the balance rows of the items' users (created empty
// when missing), ordered by user, after the counters.
func (b *batch) lockBalances(ctx context.Context, tx bun.Tx) error {
	userSet := map[uuid.UUID]bool{}
	for i, it := range b.items {
		if b.res[i].Err == nil {
			userSet[it.UserID] = true
		}
	}
	b.balances = map[uuid.UUID]*ledger.Balance{}
	if len(userSet) == 0 {
		return nil
	}
	users := keys(userSet)
	slices.SortFunc(users, compareUUID)
	// Most users of a batch already have a balance row: lock those first,
	// and only insert (then lock) the missing ones. An INSERT ... ON
	// CONFLICT over the whole batch cost a speculative insertion per row
	// (about a tenth of a chunk's time) to create nothing.
	if err := b.lockBalanceRows(ctx, tx, users); err != nil {
		return err
	}
	var missing []uuid.UUID
	for _, u := range users {
		if b.balances[u] == nil {
			missing = append(missing, u)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	_, err := tx.NewRaw(`INSERT INTO balances (partner_id, user_id) SELECT ?, u FROM unnest(?::uuid[]) AS u
		ORDER BY u ON CONFLICT DO NOTHING`, b.p.ID, pgdialect.Array(missing)).Exec(ctx)
	if err != nil {
		if isForeignKeyViolation(err) {
			return fmt.Errorf("batch names a user that does not exist: %w", err)
		}
		return fmt.Errorf("create balances: %w", err)
	}
	return b.lockBalanceRows(ctx, tx, missing)
}

// lockBalanceRows locks the existing balance rows of users (sorted),
// ordered by user, into b.balances.
func (b *batch) lockBalanceRows(ctx context.Context, tx bun.Tx, users []uuid.UUID) error {
	var rows []ledger.Balance
	err := tx.NewRaw(`SELECT b.* FROM balances b WHERE b.partner_id = ? AND b.user_id = ANY(?::uuid[])
		ORDER BY b.user_id FOR UPDATE`, b.p.ID, pgdialect.Array(users)).Scan(ctx, &rows)
	if err != nil {
		return fmt.Errorf("lock balances: %w", err)
	}
	for i := range rows {
		b.balances[rows[i].UserID] = &rows[i]
	}
	return nil
}

// decide settles every pre-checked item in input order against the locked
// rows: a reference seen before makes it a duplicate (or a conflict, for
// another user), then the caps and cooldown (admit), then its breakdown
// (EarnTx's pipeline: modifiers, cap, NO_POINTS_EARNED), then the balance
// ceiling. An accepted item updates the in-memory balance and counter, so
// later items of the same user see it. It is in memory unless a modifier
// is active for the partner (batch.parts): then each item's modifiers run
// under a savepoint, undone
// when the item is refused after them, so a refused item consumes no
// campaign budget.
func (s *Service) decide(ctx context.Context, tx bun.Tx, b *batch) error {
	batchRef := map[string]int{} // reference -> accepted item
	b.dupOf = map[int]int{}
	b.touched = map[counterKey]bool{}
	probe := &Earn{Parts: b.parts, PartsKnown: true}
	modifiers := active(s.Tier, probe) || active(s.Campaigns, probe)
	for i, it := range b.items {
		if b.res[i].Err != nil || b.repeatsReference(i, batchRef) {
			continue
		}
		r := b.rules[it.Code]
		var counter *Counter
		var before Counter
		if r.limited() {
			counter = b.counters[counterKey{it.UserID, it.Code}]
			before = *counter
			if err := admit(r, counter, b.today, b.now); err != nil {
				b.fail(i, err)
				continue
			}
		}
		// undo forgets the item's admission and its modifiers' writes.
		undo := func() error {
			if counter != nil {
				*counter = before
			}
			if modifiers {
				if _, err := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT earn_item"); err != nil {
					return fmt.Errorf("rollback to savepoint: %w", err)
				}
			}
			return nil
		}
		if modifiers {
			if _, err := tx.ExecContext(ctx, "SAVEPOINT earn_item"); err != nil {
				return fmt.Errorf("savepoint: %w", err)
			}
		}
		bd, err := s.breakdownTx(ctx, tx, &Earn{Partner: b.p, UserID: it.UserID, Rule: r, Params: &b.items[i].EarnParams, Now: b.now,
			Parts: b.parts, PartsKnown: true}, b.bases[i])
		if err != nil {
			if uerr := undo(); uerr != nil {
				return uerr
			}
			if apperr.As(err) == nil {
				return err
			}
			b.fail(i, err)
			continue
		}
		b.points[i] = bd.Total
		bal := b.balances[it.UserID]
		if bal.Points+b.points[i] > ledger.MaxBalance || bal.LifetimeEarned+b.points[i] > ledger.MaxBalance {
			if err := undo(); err != nil {
				return err
			}
			b.fail(i, apperr.New(apperr.CodePointsOutOfRange, "the balance would exceed the maximum of %d points", ledger.MaxBalance))
			continue
		}
		if modifiers {
			if _, err := tx.ExecContext(ctx, "RELEASE SAVEPOINT earn_item"); err != nil {
				return fmt.Errorf("release savepoint: %w", err)
			}
		}
		if counter != nil {
			b.touched[counterKey{it.UserID, it.Code}] = true
		}
		b.res[i].Breakdown = &bd
		// Points held pending count in pending_points, not in the balance
		// nor the lifetime total, until ledger.ActivateDueTx.
		b.availableAt[i], b.expiresAt[i], b.held[i] = it.lotDates(b.policy, b.rules[it.Code].overrides(), b.now, b.loc)
		if b.pending(i) {
			bal.PendingPoints += b.points[i]
		} else {
			bal.Points += b.points[i]
			bal.LifetimeEarned += b.points[i]
		}
		after := bal.Points
		b.res[i].Balance = &after
		if it.Reference != nil {
			batchRef[*it.Reference] = i
		}
		b.accepted = append(b.accepted, i)
	}
	return nil
}

// pending reports whether accepted item i holds its points pending.
func (b *batch) pending(i int) bool { return b.held[i] || b.availableAt[i].After(b.now) }

// repeatsReference settles item i when its reference was used before: in
// the ledger (the original entry, a duplicate) or by an item accepted
// earlier in the batch (that item's entry once written). Another user's
// reference fails the item with CONFLICT. It reports whether i is settled.
func (b *batch) repeatsReference(i int, batchRef map[string]int) bool {
	it := b.items[i]
	if it.Reference == nil {
		return false
	}
	ref := *it.Reference
	if pr, ok := b.prior[ref]; ok {
		if pr.UserID != it.UserID {
			b.fail(i, apperr.Field(apperr.CodeConflict, "reference", "reference %q was already used for another user", ref))
		} else {
			id := pr.ID
			b.res[i] = ManyResult{EntryID: &id, Duplicate: true}
		}
		return true
	}
	if j, ok := batchRef[ref]; ok {
		if b.items[j].UserID != it.UserID {
			b.fail(i, apperr.Field(apperr.CodeConflict, "reference", "reference %q is used by another item for another user", ref))
		} else {
			b.res[i].Duplicate = true
			b.dupOf[i] = j
		}
		return true
	}
	return false
}

// write stores what decide accepted: the entries (their ids allocated up
// front so results map to input order) with their points.earned events,
// the balances and the counters; then points each in-batch duplicate at
// its original's entry.
func (s *Service) write(ctx context.Context, tx bun.Tx, b *batch) error {
	events, err := b.writeEntries(ctx, tx)
	if err != nil {
		return err
	}
	if err := b.writeBalances(ctx, tx); err != nil {
		return err
	}
	if err := b.writeCounters(ctx, tx); err != nil {
		return err
	}
	if err := s.Ledger.Events.RecordTx(ctx, tx, events...); err != nil {
		return err
	}
	// Tier upgrades of the batch's users, one statement for the batch.
	if s.Tiers != nil && b.parts.Tiers {
		seen := make(map[uuid.UUID]bool, len(b.accepted))
		users := make([]uuid.UUID, 0, len(b.accepted))
		for _, i := range b.accepted {
			if u := b.items[i].UserID; !seen[u] {
				seen[u] = true
				users = append(users, u)
			}
		}
		if _, err := s.Tiers.EvaluateTx(ctx, tx, b.p.ID, users...); err != nil {
			return err
		}
	}
	// Referrals the batch's earns qualify, as EarnTx's; only partners
	// with an enabled referral policy ask.
	if s.Referrals != nil && b.parts.Referrals {
		entries := make([]*ledger.Entry, 0, len(b.accepted))
		amounts := make([]*int64, 0, len(b.accepted))
		for _, i := range b.accepted {
			it := &b.items[i]
			entries = append(entries, &ledger.Entry{ID: *b.res[i].EntryID, UserID: it.UserID, ActionCode: &it.Code})
			amounts = append(amounts, it.Amount)
		}
		if err := s.Referrals.EarnedManyTx(ctx, tx, b.p, entries, amounts); err != nil {
			return err
		}
	}
	for i, j := range b.dupOf {
		b.res[i].EntryID = b.res[j].EntryID
	}
	return nil
}

// writeEntries inserts the accepted items' ledger entries in one statement
// and returns their points.earned events. The statement allocates the
// entries' ids and returns them in input order (no round trip of its own
// to reserve them first). A reference taken meanwhile by another
// transaction fails it (see EarnManyTx).
func (b *batch) writeEntries(ctx context.Context, tx bun.Tx) ([]*event.Event, error) {
	n := len(b.accepted)
	var (
		eUsers   = make([]uuid.UUID, n)
		ePoints  = make([]int64, n)
		eAfter   = make([]int64, n)
		eReasons = make([]string, n)
		eCodes   = make([]string, n)
		eRefs    = make([]*string, n)
		eAt      = make([]time.Time, n)
		eKinds   = make([]string, n)
		eAvail   = make([]*time.Time, n)
		eExpires = make([]*time.Time, n)
		eBreak   = make([]string, n)
		events   = make([]*event.Event, 0, n)
	)
	for k, i := range b.accepted {
		it := b.items[i]
		eUsers[k], ePoints[k], eAfter[k] = it.UserID, b.points[i], *b.res[i].Balance
		eReasons[k], eCodes[k] = b.rules[it.Code].Name, it.Code
		if it.Reference != nil {
			ref := *it.Reference
			eRefs[k] = &ref
		}
		eAt[k] = it.OccurredAt
		if eAt[k].IsZero() {
			eAt[k] = b.now
		}
		avail := b.now
		eKinds[k], eAvail[k], eExpires[k] = string(ledger.KindEarn), &avail, b.expiresAt[i]
		if b.pending(i) {
			// A held item's lot has no available_at (NULL), like
			// ledger.ApplyTx's.
			eKinds[k], eAvail[k] = string(ledger.KindPending), ledger.PendingUntil(b.held[i], b.availableAt[i])
		}
		raw, err := b.res[i].Breakdown.encode()
		if err != nil {
			return nil, err
		}
		eBreak[k] = string(raw)
	}
	// Each entry gets its lot, dated by the policy (decide), in the same
	// statement; the balances are locked (lockBalances). t is computed once
	// (a CTE read twice, with a volatile nextval), so each item keeps the id
	// it was given.
	var ids []int64
	err := tx.NewRaw(`WITH t AS (
		SELECT nextval(pg_get_serial_sequence('ledger_entries', 'id')) AS id, t.*
		FROM unnest(?::uuid[], ?::bigint[], ?::bigint[], ?::text[], ?::text[], ?::text[], ?::timestamptz[], ?::text[], ?::timestamptz[], ?::timestamptz[], ?::jsonb[])
		WITH ORDINALITY AS t(u, pts, after, reason, code, ref, at, kind, avail, exp, bd, ord)
	), e AS (
		INSERT INTO ledger_entries (partner_id, id, user_id, kind, points, balance_after, reason, action_code, reference, occurred_at, created_at, breakdown)
		OVERRIDING SYSTEM VALUE
		SELECT ?, id, u, kind, pts, after, reason, code, ref, at, ?, bd
		FROM t
		RETURNING partner_id, id, created_at
	), l AS (
		INSERT INTO point_lots (partner_id, user_id, source_entry_id, points, remaining, debt_paid, pending, available_at, expires_at, created_at)
		SELECT e.partner_id, t.u, e.id, t.pts, r.remaining, t.pts - r.remaining, r.pending, t.avail, t.exp, e.created_at
		FROM e JOIN t ON t.id = e.id,
		-- A held lot has no available_at (pending until confirmed). A debt
		-- (negative balance after a reversal) is paid first, as in ledger's
		-- creditSQL; a pending lot pays on activation.
		LATERAL (SELECT coalesce(t.avail > e.created_at, true) AS pending) p,
		LATERAL (SELECT p.pending, CASE WHEN p.pending THEN t.pts ELSE least(t.pts, greatest(t.after, 0)) END AS remaining) r
	)
	SELECT id FROM t ORDER BY ord`,
		pgdialect.Array(eUsers), pgdialect.Array(ePoints), pgdialect.Array(eAfter),
		pgdialect.Array(eReasons), pgdialect.Array(eCodes), pgdialect.Array(eRefs), pgdialect.Array(eAt),
		pgdialect.Array(eKinds), pgdialect.Array(eAvail), pgdialect.Array(eExpires), pgdialect.Array(eBreak), b.p.ID, b.now).Scan(ctx, &ids)
	if err != nil {
		return nil, fmt.Errorf("insert %d entries: %w", n, err)
	}
	if len(ids) != n {
		return nil, fmt.Errorf("insert %d entries: %d ids returned", n, len(ids))
	}
	for k, i := range b.accepted {
		it := b.items[i]
		id := ids[k]
		b.res[i].EntryID = &id
		uid := it.UserID
		typ, payload := event.PointsEarned, map[string]any{"userId": uid, "entryId": id, "points": b.points[i], "balance": *b.res[i].Balance, "action": it.Code}
		if b.pending(i) {
			// The same points.pending as ledger.ApplyTx's.
			typ, payload["reference"], payload["availableAt"] = event.PointsPending, eRefs[k], eAvail[k]
		}
		data, _ := json.Marshal(payload)
		events = append(events, &event.Event{PartnerID: b.p.ID, ID: uuid.New(), Type: typ, UserID: &uid, Data: data, CreatedAt: b.now})
	}
	return events, nil
}

// writeBalances stores the locked balances that decide changed.
func (b *batch) writeBalances(ctx context.Context, tx bun.Tx) error {
	users := make([]uuid.UUID, 0, len(b.balances))
	points := make([]int64, 0, len(b.balances))
	life := make([]int64, 0, len(b.balances))
	pend := make([]int64, 0, len(b.balances))
	for u, bal := range b.balances {
		users, points, life = append(users, u), append(points, bal.Points), append(life, bal.LifetimeEarned)
		pend = append(pend, bal.PendingPoints)
	}
	_, err := tx.NewRaw(`UPDATE balances b SET points = t.pts, lifetime_earned = t.life, pending_points = t.pend, updated_at = ?
		FROM unnest(?::uuid[], ?::bigint[], ?::bigint[], ?::bigint[]) AS t(u, pts, life, pend)
		WHERE b.partner_id = ? AND b.user_id = t.u
		  AND (b.points, b.lifetime_earned, b.pending_points) IS DISTINCT FROM (t.pts, t.life, t.pend)`,
		b.now, pgdialect.Array(users), pgdialect.Array(points), pgdialect.Array(life), pgdialect.Array(pend), b.p.ID).Exec(ctx)
	if err != nil {
		return fmt.Errorf("update balances: %w", err)
	}
	return nil
}

// writeCounters stores the counters admit changed.
func (b *batch) writeCounters(ctx context.Context, tx bun.Tx) error {
	if len(b.touched) == 0 {
		return nil
	}
	var cu []uuid.UUID
	var cc []string
	var ct, cd []int
	var cday, clast []time.Time
	for k := range b.touched {
		c := b.counters[k]
		cu, cc, ct, cd, cday, clast = append(cu, k.user), append(cc, k.code), append(ct, c.Total), append(cd, c.DayCount), append(cday, c.Day), append(clast, c.LastAt)
	}
	_, err := tx.NewRaw(`UPDATE earning_counters c SET total = t.total, day_count = t.dc, day = t.day, last_at = t.last
		FROM unnest(?::uuid[], ?::text[], ?::int[], ?::int[], ?::date[], ?::timestamptz[]) AS t(u, code, total, dc, day, last)
		WHERE c.partner_id = ? AND c.user_id = t.u AND c.code = t.code`,
		pgdialect.Array(cu), pgdialect.Array(cc), pgdialect.Array(ct), pgdialect.Array(cd), pgdialect.Array(cday), pgdialect.Array(clast), b.p.ID).Exec(ctx)
	if err != nil {
		return fmt.Errorf("update counters: %w", err)
	}
	return nil
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
