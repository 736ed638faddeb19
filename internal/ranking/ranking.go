// Package ranking is the leaderboard: users ranked by lifetime points.
//
// Each replica keeps, per partner it is asked about, an order-statistics
// list of the ranked users in memory (order), loaded once from balances
// and then kept up to date from the rows changed since (the balances'
// and user_erasures' xid change tracking: rows whose writing transaction
// the last read's snapshot did not see, so a change that commits late is
// never missed and one already applied is not read again). A
// rank, the neighbours and the top are then a few microseconds of memory,
// whatever the number of users, and only the display names of the users
// shown are read from the database.
//
// Freshness: a board is brought up to date by the first request that finds
// it older than SyncEvery (PERKS_RANKING_REFRESH, 1 s by default), so a
// rank reflects an earn within about a second on every replica. While one
// request reads the changes, concurrent requests answer from the board as
// it was (RefreshedAt says when). The first request for a partner loads it
// (one query and one sort; Load does it ahead of requests); boards unused for IdleAfter are
// dropped. Memory: about 230 bytes per ranked user per replica (Go heap,
// measured on 1,000,000 keys), 56 of them for the index by lookup-hash
// prefix that lets a partner request find its user and the neighbours'
// names in one statement (AroundHash).
//
// Ties share a rank (competition ranking: 1, 2, 2, 4). Within a tie, earlier
// members come first, then by user id, so lists are deterministic. Users with
// no lifetime points are not ranked. Only display names are shown.
package ranking

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/database"
)

// Entry is one line of the leaderboard.
type Entry struct {
	UserID      uuid.UUID `bun:"user_id,type:uuid"`
	ExternalID  *string   `bun:"external_id"`
	DisplayName *string   `bun:"display_name"`
	Score       int64     `bun:"score"`
	Rank        int64     `bun:"rank"`
	Position    int64     `bun:"position"`
	RefreshedAt time.Time `bun:"refreshed_at"`
}

// Around is a user's standing and their neighbours.
type Around struct {
	// Me is nil when the user is not ranked (yet).
	Me          *Entry
	Above       []Entry
	Below       []Entry
	RefreshedAt *time.Time
}

// MaxAround bounds n in Around.
const MaxAround = 50

// Defaults of Service.
const (
	DefaultSyncEvery = time.Second
	DefaultIdleAfter = 10 * time.Minute
)

// Service reads the leaderboard. The zero value works (time.Now, the
// defaults above).
type Service struct {
	Now func() time.Time
	// SyncEvery is how old a board may get before a request brings it up
	// to date.
	SyncEvery time.Duration
	// IdleAfter drops boards nobody asked about for that long.
	IdleAfter time.Duration

	mu     sync.Mutex
	boards map[uuid.UUID]*board
}

// board is one partner's leaderboard on this replica.
type board struct {
	load sync.Mutex // held while loading, and while reading changes
	mu   sync.RWMutex
	o    *order
	// snap is the snapshot the board was last read in (pg_snapshot's
	// text): changes written by transactions it did not see are read next.
	snap     string
	syncedAt time.Time
	usedAt   time.Time
	loaded   bool
	// read is how many rows the last sync read (tests).
	read int
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// board returns the partner's board, loaded and no older than SyncEvery
// (unless another request is reading its changes right now).
func (s *Service) board(ctx context.Context, db bun.IDB, partnerID uuid.UUID) (*board, error) {
	now := s.now()
	s.mu.Lock()
	if s.boards == nil {
		s.boards = map[uuid.UUID]*board{}
	}
	idle := s.IdleAfter
	if idle <= 0 {
		idle = DefaultIdleAfter
	}
	for id, b := range s.boards {
		if b.loaded && id != partnerID && now.Sub(b.used()) > idle {
			delete(s.boards, id)
		}
	}
	b := s.boards[partnerID]
	if b == nil {
		b = &board{o: newOrder()}
		s.boards[partnerID] = b
	}
	s.mu.Unlock()

	b.mu.Lock()
	b.usedAt = now
	loaded, stale := b.loaded, now.Sub(b.syncedAt) >= s.syncEvery()
	b.mu.Unlock()
	switch {
	case !loaded:
		b.load.Lock() // every request waits for the first load
		defer b.load.Unlock()
		if err := s.sync(ctx, db, partnerID, b); err != nil {
			return nil, err
		}
	case stale && b.load.TryLock(): // others answer from the board as it is
		defer b.load.Unlock()
		if err := s.sync(ctx, db, partnerID, b); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func (b *board) used() time.Time {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.usedAt
}

func (s *Service) syncEvery() time.Duration {
	if s.SyncEvery > 0 {
		return s.SyncEvery
	}
	return DefaultSyncEvery
}

// changesSQL reads, in one snapshot, the balances written and the users
// erased by transactions the board's last snapshot (?1) did not see: those
// that had not started (at or above its xmax) and those still running then
// (its xip list); and the current snapshot (the row without a user), the
// next watermark. A balance with no lifetime points is read too: it leaves
// the board.
//
// The first version read every row at or above the last snapshot's xmin,
// which is exact too but re-reads everything written since the oldest
// transaction running anywhere on the server: one long transaction (an
// export, a report, another database's test) made every sync re-read and
// re-apply every balance written since, in the request that found the
// board stale (200,000 rows a second after the bench's seed, a second of
// CPU in one request's latency).
//
// Each condition is its own branch so that each keeps its index condition
// on (partner_id, xid): a range from xmax, and point lookups of the few
// transactions that were running (an OR of the two was planned as a scan
// of the partner's whole index range).
const changesSQL = `WITH w AS (SELECT pg_current_snapshot()::text AS snap),
	b AS (
		SELECT user_id, lifetime_earned FROM balances WHERE partner_id = ?0 AND xid >= pg_snapshot_xmax(?1::pg_snapshot)
		UNION ALL
		SELECT user_id, lifetime_earned FROM balances WHERE partner_id = ?0 AND xid = ANY(ARRAY(SELECT pg_snapshot_xip(?1::pg_snapshot)))
	)
	SELECT b.user_id, b.lifetime_earned, u.created_at, false, NULL, substring(u.external_id_hash FOR 8)
	FROM b JOIN users u ON u.partner_id = ?0 AND u.id = b.user_id
	UNION ALL
	SELECT e.user_id, 0, 'epoch', true, NULL, NULL FROM user_erasures e WHERE e.partner_id = ?0 AND e.xid >= pg_snapshot_xmax(?1::pg_snapshot)
	UNION ALL
	SELECT e.user_id, 0, 'epoch', true, NULL, NULL FROM user_erasures e
	WHERE e.partner_id = ?0 AND e.xid = ANY(ARRAY(SELECT pg_snapshot_xip(?1::pg_snapshot)))
	UNION ALL
	SELECT NULL, 0, 'epoch', true, w.snap, NULL FROM w`

// loadSQL reads every ranked user of the partner and the snapshot it read
// them in, the watermark (the first load; a join PostgreSQL hashes, where
// the xid conditions of changesSQL would walk an index over every balance).
const loadSQL = `WITH w AS (SELECT pg_current_snapshot()::text AS snap)
	SELECT b.user_id, b.lifetime_earned, u.created_at, false, NULL, substring(u.external_id_hash FOR 8)
	FROM balances b JOIN users u ON u.partner_id = b.partner_id AND u.id = b.user_id
	WHERE b.partner_id = ? AND b.lifetime_earned > 0
	UNION ALL
	SELECT NULL, 0, 'epoch', true, w.snap, NULL FROM w`

// sync applies the changes since the board's watermark, or loads it
// whole the first time (b.load held). Rows are scanned by hand: a million
// of them through bun's reflection cost seconds.
func (s *Service) sync(ctx context.Context, db bun.IDB, partnerID uuid.UUID, b *board) error {
	now := s.now()
	b.mu.RLock()
	from, loaded := b.snap, b.loaded
	b.mu.RUnlock()
	var rows *sql.Rows
	var err error
	if loaded {
		rows, err = db.QueryContext(ctx, changesSQL, partnerID, from)
	} else {
		rows, err = db.QueryContext(ctx, loadSQL, partnerID)
	}
	if err != nil {
		return fmt.Errorf("read leaderboard changes: %w", err)
	}
	defer rows.Close()
	type change struct {
		user   uuid.UUID
		score  int64
		since  int64
		hash   uint64
		erased bool
	}
	var changes []change
	var snap string
	for rows.Next() {
		var id uuid.NullUUID
		var c change
		var at time.Time
		var wm sql.NullString
		var hash []byte
		if err := rows.Scan(&id, &c.score, &at, &c.erased, &wm, &hash); err != nil {
			return fmt.Errorf("read leaderboard changes: %w", err)
		}
		if !id.Valid {
			snap = wm.String
			continue
		}
		c.user, c.since, c.hash = id.UUID, at.UnixNano(), hashPrefix(hash)
		changes = append(changes, c)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read leaderboard changes: %w", err)
	}
	if !loaded {
		keys := make([]key, len(changes))
		for i, c := range changes {
			keys[i] = key{score: c.score, since: c.since, id: c.user, hash: c.hash}
		}
		o := buildOrder(keys)
		b.mu.Lock()
		b.o, b.snap, b.loaded, b.syncedAt = o, snap, true, now
		b.mu.Unlock()
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range changes {
		if c.erased {
			b.o.drop(c.user)
		} else {
			b.o.set(c.user, c.score, c.since, c.hash)
		}
	}
	b.snap, b.syncedAt, b.read = snap, now, len(changes)
	return nil
}

// Refresh brings every board this replica holds up to date now (tests and
// the bench use it as a sync point; requests do it on their own).
func (s *Service) Refresh(ctx context.Context, db bun.IDB) error {
	s.mu.Lock()
	ids := make([]uuid.UUID, 0, len(s.boards))
	for id := range s.boards {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	for _, id := range ids {
		if err := s.Load(ctx, db, id); err != nil {
			return err
		}
	}
	return nil
}

// Load loads the partner's board (or brings it up to date) now, so that
// the first request does not pay for it.
func (s *Service) Load(ctx context.Context, db bun.IDB, partnerID uuid.UUID) error {
	b, err := s.board(ctx, db, partnerID)
	if err != nil {
		return err
	}
	b.load.Lock()
	defer b.load.Unlock()
	return s.sync(ctx, db, partnerID, b)
}

// line is a board entry before its user's names are read.
type line struct {
	k        key
	rank     int64
	position int64
}

// Top returns the first n entries.
func (s *Service) Top(ctx context.Context, db bun.IDB, partnerID uuid.UUID, n int) ([]Entry, error) {
	b, err := s.board(ctx, db, partnerID)
	if err != nil {
		return nil, err
	}
	b.mu.RLock()
	lines := b.lines(0, n)
	at := b.syncedAt
	b.mu.RUnlock()
	names, err := readNames(ctx, db, partnerID, lines, nil)
	if err != nil {
		return nil, err
	}
	return entries(lines, names.byID, at), nil
}

// lines returns the entries at positions [from, to) with their ranks
// (b.mu held).
func (b *board) lines(from, to int) []line {
	keys := b.o.slice(from, to)
	out := make([]line, len(keys))
	var rank int64
	for i, k := range keys {
		if i == 0 || k.score != keys[i-1].score {
			rank = b.o.rank(k.score)
		}
		out[i] = line{k: k, rank: rank, position: int64(max(from, 0) + i + 1)}
	}
	return out
}

// Around returns the user's entry and up to n entries above and below.
func (s *Service) Around(ctx context.Context, db bun.IDB, partnerID, userID uuid.UUID, n int) (*Around, error) {
	if n < 0 || n > MaxAround {
		return nil, apperr.Field(apperr.CodeInvalidField, "n", "n must be between 0 and %d", MaxAround)
	}
	b, err := s.board(ctx, db, partnerID)
	if err != nil {
		return nil, err
	}
	lines, at, ok := b.around(userID, n)
	if !ok {
		return &Around{}, nil
	}
	names, err := readNames(ctx, db, partnerID, lines, nil)
	if err != nil {
		return nil, err
	}
	return shape(userID, entries(lines, names.byID, at), at), nil
}

// AroundHash is Around for the user whose external-id lookup hash is hash
// (user.Service.ExternalIDHash), as the partner API names users: it
// answers USER_NOT_FOUND when no user of the partner has that hash, and
// returns the user's id.
//
// It costs one round trip where looking the user up and then reading the
// names cost two: the board guesses the user from the hash's prefix
// (order.byHash), and one statement reads the user by hash together with
// the names of the guessed neighbours. The database decides who the user
// is; when the guess was wrong (another user sharing the prefix, a hash the
// board has not seen change, a user not ranked) the names are read again
// for the right lines, the rare second round trip.
func (s *Service) AroundHash(ctx context.Context, db bun.IDB, partnerID uuid.UUID, hash []byte, n int) (uuid.UUID, *Around, error) {
	if n < 0 || n > MaxAround {
		return uuid.Nil, nil, apperr.Field(apperr.CodeInvalidField, "n", "n must be between 0 and %d", MaxAround)
	}
	b, err := s.board(ctx, db, partnerID)
	if err != nil {
		return uuid.Nil, nil, err
	}
	b.mu.RLock()
	guess, guessed := b.o.byHash[hashPrefix(hash)]
	b.mu.RUnlock()
	var lines []line
	var at time.Time
	if guessed {
		lines, at, guessed = b.around(guess, n)
	}
	names, err := readNames(ctx, db, partnerID, lines, hash)
	if err != nil {
		return uuid.Nil, nil, err
	}
	if !names.found {
		return uuid.Nil, nil, apperr.New(apperr.CodeUserNotFound, "user not found")
	}
	me := names.me
	if !guessed || me != guess {
		lines, at, guessed = b.around(me, n)
		if !guessed {
			return me, &Around{}, nil
		}
		if names, err = readNames(ctx, db, partnerID, lines, nil); err != nil {
			return uuid.Nil, nil, err
		}
	}
	return me, shape(me, entries(lines, names.byID, at), at), nil
}

// around returns the lines of user id and up to n users either side, and
// when the board was read; ok is false when the user is not ranked.
func (b *board) around(id uuid.UUID, n int) (lines []line, at time.Time, ok bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	k, ok := b.o.users[id]
	if !ok {
		return nil, time.Time{}, false
	}
	pos := b.o.position(k)
	return b.lines(pos-n, pos+n+1), b.syncedAt, true
}

// shape splits entries around the user's own; a user erased since the
// board's last read (left out of entries) is not ranked.
func shape(userID uuid.UUID, entries []Entry, at time.Time) *Around {
	out := &Around{RefreshedAt: &at}
	for i := range entries {
		e := entries[i]
		switch {
		case e.UserID == userID:
			out.Me = &e
		case out.Me == nil:
			out.Above = append(out.Above, e)
		default:
			out.Below = append(out.Below, e)
		}
	}
	if out.Me == nil {
		return &Around{}
	}
	return out
}

// nameSet is what readNames found: the names by user id, and the user the
// lookup hash names (me; found is false when none does).
type nameSet struct {
	byID  map[uuid.UUID]userNames
	me    uuid.UUID
	found bool
}

type userNames struct {
	externalID, displayName *string
}

// namesSQL reads the external ids and display names of the users $2 and,
// when $3 is not null, the user whose lookup hash it is (the last column
// tells that row apart). A prepared statement, ids passed as one array
// literal: the board asks it on every ranking request.
const namesSQL = `SELECT id, external_id, display_name, false FROM users WHERE partner_id = $1 AND id = ANY($2::uuid[])
	UNION ALL
	SELECT id, external_id, display_name, true FROM users WHERE partner_id = $1 AND external_id_hash = $3::bytea`

// readNames reads the names of lines' users and, when hash is not nil,
// finds the user it names, in one statement.
func readNames(ctx context.Context, db bun.IDB, partnerID uuid.UUID, lines []line, hash []byte) (nameSet, error) {
	out := nameSet{byID: make(map[uuid.UUID]userNames, len(lines))}
	if len(lines) == 0 && hash == nil {
		return out, nil
	}
	ids := make([]byte, 0, 2+37*len(lines))
	ids = append(ids, '{')
	for i, l := range lines {
		if i > 0 {
			ids = append(ids, ',')
		}
		ids = append(ids, l.k.id.String()...)
	}
	ids = append(ids, '}')
	rows, err := database.Query(ctx, db, namesSQL, partnerID, string(ids), hash)
	if err != nil {
		return out, fmt.Errorf("leaderboard names: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id uuid.UUID
		var n userNames
		var me bool
		if err := rows.Scan(&id, &n.externalID, &n.displayName, &me); err != nil {
			return out, fmt.Errorf("leaderboard names: %w", err)
		}
		if me {
			out.me, out.found = id, true
			continue
		}
		out.byID[id] = n
	}
	if err := rows.Err(); err != nil {
		return out, fmt.Errorf("leaderboard names: %w", err)
	}
	return out, nil
}

// entries returns lines' entries with their users' names; a user erased
// since the board was read (no names) is left out.
func entries(lines []line, byID map[uuid.UUID]userNames, at time.Time) []Entry {
	out := make([]Entry, 0, len(lines))
	for _, l := range lines {
		n, ok := byID[l.k.id]
		if !ok {
			continue
		}
		out = append(out, Entry{UserID: l.k.id, ExternalID: n.externalID, DisplayName: n.displayName,
			Score: l.k.score, Rank: l.rank, Position: l.position, RefreshedAt: at})
	}
	return out
}
