// Package idempotency makes writes exactly-once per key: the first request
// with a key runs and its response is stored in the same transaction as its
// effects; a retry gets the stored response byte for byte; the same key with
// a different request is refused.
//
// Claiming a key inserts its row inside the business transaction. A
// concurrent duplicate therefore blocks on the row until the first
// transaction ends: if it committed, the duplicate replays its response; if
// it rolled back (any error), the duplicate runs as if it were first. No
// "in flight" state can be left behind by a crash. The wait is bounded by the
// pool's lock_timeout (database.LockTimeout), after which the duplicate
// answers IDEMPOTENCY_IN_PROGRESS.
package idempotency

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/database"
)

// Retention is how long keys are remembered (the promise is 24 h).
const Retention = 48 * time.Hour

// MaxKeyLen bounds keys (the Idempotency-Key header and references).
const MaxKeyLen = 255

// Record is one stored outcome.
type Record struct {
	bun.BaseModel `bun:"table:idempotency_keys"`

	PartnerID      uuid.UUID  `bun:"partner_id,pk,type:uuid"`
	Key            string     `bun:"key,pk"`
	RequestHash    []byte     `bun:"request_hash"`
	ResponseStatus *int       `bun:"response_status"`
	ResponseBody   []byte     `bun:"response_body"`
	UserID         *uuid.UUID `bun:"user_id,type:uuid"`
	CreatedAt      time.Time  `bun:"created_at"`
	ExpiresAt      time.Time  `bun:"expires_at"`
}

// Stored is a response to replay.
type Stored struct {
	Status int
	Body   []byte
}

// ValidateKey checks a client-supplied key.
func ValidateKey(field, key string) error {
	if key == "" || len(key) > MaxKeyLen {
		return apperr.Field(apperr.CodeIdempotencyKeyInvalid, field, "%s must be 1 to %d printable ASCII characters", field, MaxKeyLen)
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x21 || key[i] > 0x7e {
			return apperr.Field(apperr.CodeIdempotencyKeyInvalid, field, "%s must be 1 to %d printable ASCII characters", field, MaxKeyLen)
		}
	}
	return nil
}

// Fingerprint hashes what makes two requests "the same".
func Fingerprint(parts ...[]byte) []byte {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:", len(p))
		h.Write(p)
	}
	return h.Sum(nil)
}

// Claim is an in-progress idempotent operation inside one transaction.
//
// Keys are claimed either up front (Key: a duplicate waits for the original
// before doing anything) or at completion (Defer: the key row is inserted
// with the response, saving a statement on every write; a duplicate running
// concurrently does its work, conflicts on the key at completion, rolls back
// and replays). Both give the same guarantees.
type Claim struct {
	tx        bun.Tx
	partnerID uuid.UUID
	hash      []byte
	now       time.Time
	keys      []string
	deferred  []string
}

// BeginTx starts claiming keys, in the caller's transaction tx, for a
// request with the given fingerprint.
func BeginTx(tx bun.Tx, partnerID uuid.UUID, fingerprint []byte, now time.Time) *Claim {
	return &Claim{tx: tx, partnerID: partnerID, hash: fingerprint, now: now.UTC()}
}

// Key claims one more key. It returns the stored response when the key was
// used before with the same fingerprint (the caller must then return it and
// roll back), IDEMPOTENCY_KEY_REUSED when the fingerprint differs, and
// IDEMPOTENCY_IN_PROGRESS when the original is still running after the wait.
func (c *Claim) Key(ctx context.Context, key string) (*Stored, error) {
	res, err := database.Exec(ctx, c.tx, claimKeySQL, c.partnerID, key, c.hash, c.now, c.now.Add(Retention))
	if err != nil {
		if state(err) == "55P03" { // lock_not_available: the original is still running
			return nil, &apperr.Error{Code: apperr.CodeIdempotencyInProgress, Message: "a request with this key is still in progress", RetryAfterSeconds: 1}
		}
		return nil, fmt.Errorf("claim idempotency key: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		c.keys = append(c.keys, key)
		return nil, nil
	}
	rec := new(Record)
	err = c.tx.NewSelect().Model(rec).Where("partner_id = ? AND key = ?", c.partnerID, key).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		// Expired and pruned between the insert and the read: treat as new.
		return c.Key(ctx, key)
	}
	if err != nil {
		return nil, fmt.Errorf("load idempotency key: %w", err)
	}
	if rec.ExpiresAt.Before(c.now) {
		if _, err := c.tx.NewDelete().Model(rec).WherePK().Exec(ctx); err != nil {
			return nil, fmt.Errorf("drop expired idempotency key: %w", err)
		}
		return c.Key(ctx, key)
	}
	if string(rec.RequestHash) != string(c.hash) {
		return nil, apperr.New(apperr.CodeIdempotencyKeyReused, "this idempotency key was used for a different request")
	}
	if rec.ResponseStatus == nil {
		return nil, &apperr.Error{Code: apperr.CodeIdempotencyInProgress, Message: "a request with this key is still in progress", RetryAfterSeconds: 1}
	}
	return &Stored{Status: *rec.ResponseStatus, Body: rec.ResponseBody}, nil
}

// Claimed reports whether any key is held or deferred.
func (c *Claim) Claimed() bool { return len(c.keys)+len(c.deferred) > 0 }

// Defer claims key when the write completes.
func (c *Claim) Defer(key string) { c.deferred = append(c.deferred, key) }

// Complete stores the response for every key, in the transaction. userID
// ties the records to a user so erasure can remove them. When a deferred
// key turns out to be used already, Complete returns its stored response
// (the caller must roll back and replay it) or IDEMPOTENCY_KEY_REUSED.
func (c *Claim) Complete(ctx context.Context, status int, body []byte, userID *uuid.UUID) (*Stored, error) {
	stored, _, err := c.complete(ctx, status, body, userID, nil)
	return stored, err
}

// complete is Complete, sending comp's insert (if any) in the same
// statement as the deferred keys' claim, and returning what it returned.
func (c *Claim) complete(ctx context.Context, status int, body []byte, userID *uuid.UUID, comp *Companion) (*Stored, []string, error) {
	if len(c.keys) > 0 {
		_, err := database.Exec(ctx, c.tx, storeResponseSQL, status, body, userID, c.partnerID, c.keys)
		if err != nil {
			return nil, nil, fmt.Errorf("store idempotent response: %w", err)
		}
	}
	var companion string
	var compArgs []any
	if comp != nil {
		companion, compArgs = comp.SQL(9)
	}
	if len(c.deferred) == 0 && companion == "" {
		return nil, nil, nil
	}
	inserted, returned, err := c.insertDeferred(ctx, status, body, userID, companion, compArgs)
	if err != nil {
		if state(err) == "55P03" {
			return nil, nil, &apperr.Error{Code: apperr.CodeIdempotencyInProgress, Message: "a request with this key is still in progress", RetryAfterSeconds: 1}
		}
		return nil, nil, fmt.Errorf("store idempotent response: %w", err)
	}
	if len(inserted) == len(c.deferred) {
		return nil, returned, nil
	}
	// An earlier answer is replayed (the companion is not judged then); a
	// key only expired, not yet pruned, lets the write go on, and the
	// companion is judged on what it did insert.
	stored, err := c.prior(ctx, c.tx)
	return stored, returned, err
}

// claimKeySQL and storeResponseSQL claim a key up front and store the
// response under it: every GraphQL mutation and merchant write runs them,
// so they are prepared (database.Exec).
const (
	claimKeySQL = `INSERT INTO idempotency_keys (partner_id, key, request_hash, created_at, expires_at)
	VALUES ($1, $2, $3, $4, $5) ON CONFLICT (partner_id, key) DO NOTHING`
	storeResponseSQL = `UPDATE idempotency_keys SET response_status = $1, response_body = $2, user_id = $3
	WHERE partner_id = $4 AND key = ANY ($5::text[])`
)

// insertDeferredSQL claims the deferred keys with the response: every
// partner write runs it, prepared (database.Query), as one CTE so that a
// companion insert (Companion) can ride in the same statement.
const insertDeferredSQL = `k AS (INSERT INTO idempotency_keys (partner_id, key, request_hash, response_status, response_body, user_id, created_at, expires_at)
	SELECT $1, k, $2, $3, $4, $5, $6, $7 FROM unnest($8::text[]) AS k
	ON CONFLICT (partner_id, key) DO NOTHING RETURNING key)`

// insertDeferred claims the deferred keys (none is fine) and runs the
// companion insert, in one statement; it returns the keys inserted and what
// the companion returned.
func (c *Claim) insertDeferred(ctx context.Context, status int, body []byte, userID *uuid.UUID, companion string, compArgs []any) (inserted, returned []string, err error) {
	q := "WITH " + insertDeferredSQL
	if companion != "" {
		q += ", c AS (" + companion + ") SELECT true, key FROM k UNION ALL SELECT false, v FROM c"
	} else {
		q += " SELECT true, key FROM k"
	}
	args := append([]any{c.partnerID, c.hash, status, body, userID, c.now, c.now.Add(Retention), c.deferred}, compArgs...)
	rows, err := database.Query(ctx, c.tx, q, args...)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var key bool
		var v string
		if err := rows.Scan(&key, &v); err != nil {
			return nil, nil, err
		}
		if key {
			inserted = append(inserted, v)
		} else {
			returned = append(returned, v)
		}
	}
	return inserted, returned, rows.Err()
}

// Prior looks up, in db (the pool: the write's transaction may be aborted),
// whether a deferred key was used before: its stored response to replay,
// IDEMPOTENCY_KEY_REUSED when it was used for another request, or nothing.
// A write that failed calls it to answer a retry of an earlier success with
// that success rather than with the failure.
func (c *Claim) Prior(ctx context.Context, db bun.IDB) (*Stored, error) {
	if len(c.deferred) == 0 {
		return nil, nil
	}
	return c.prior(ctx, db)
}

func (c *Claim) prior(ctx context.Context, db bun.IDB) (*Stored, error) {
	var recs []Record
	err := db.NewSelect().Model(&recs).
		Where("partner_id = ? AND key IN (?) AND expires_at >= ?", c.partnerID, bun.List(c.deferred), c.now).Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("load idempotency keys: %w", err)
	}
	for _, rec := range recs {
		if string(rec.RequestHash) != string(c.hash) {
			return nil, apperr.New(apperr.CodeIdempotencyKeyReused, "this idempotency key was used for a different request")
		}
	}
	for _, rec := range recs {
		if rec.ResponseStatus != nil {
			return &Stored{Status: *rec.ResponseStatus, Body: rec.ResponseBody}, nil
		}
	}
	if len(recs) > 0 {
		return nil, &apperr.Error{Code: apperr.CodeIdempotencyInProgress, Message: "a request with this key is still in progress", RetryAfterSeconds: 1}
	}
	return nil, nil
}

// Release forgets the keys claimed in this transaction. It is for a failure
// whose side effects must still commit (a wrong one-time code that was
// counted): the failure is not stored, so a retry with the same key runs
// again, as after any other failure.
func (c *Claim) Release(ctx context.Context) error {
	c.deferred = nil
	if len(c.keys) == 0 {
		return nil
	}
	_, err := c.tx.NewDelete().Model((*Record)(nil)).
		Where("partner_id = ? AND key IN (?)", c.partnerID, bun.List(c.keys)).Exec(ctx)
	if err != nil {
		return fmt.Errorf("release idempotency keys: %w", err)
	}
	c.keys = nil
	return nil
}

// Prune deletes expired records.
func Prune(ctx context.Context, db bun.IDB, now time.Time) (int64, error) {
	res, err := db.NewDelete().Model((*Record)(nil)).Where("expires_at < ?", now.UTC()).Exec(ctx)
	if err != nil {
		return 0, fmt.Errorf("prune idempotency keys: %w", err)
	}
	return res.RowsAffected()
}

type sqlStater interface{ SQLState() string }

func state(err error) string {
	var e sqlStater
	if errors.As(err, &e) {
		return e.SQLState()
	}
	return ""
}

// Request describes one exactly-once write for Run.
type Request struct {
	PartnerID uuid.UUID
	// Fingerprint is what makes two requests "the same" (Fingerprint()).
	Fingerprint []byte
	Now         time.Time
	// Keys are claimed up front: a duplicate waits for the original and
	// replays its answer without running the work (merchant redemptions,
	// GraphQL mutations).
	Keys []string
	// Deferred keys are claimed when the work completes, saving a statement
	// on every write; a concurrent duplicate does the work, conflicts on the
	// key, rolls back and replays (partner writes).
	Deferred []string
	// Companion, when set, is an insert sent with the stored response and
	// judged only when no earlier answer was found. Partner writes remember
	// their signature with it, so a retry with a key gets the stored answer
	// before the replay cache could refuse it, and the write pays one round
	// trip for both.
	Companion *Companion
}

// Companion is an insert that must commit with a write's stored answer.
type Companion struct {
	// SQL is an INSERT ... RETURNING one text column named v, its
	// placeholders numbered from first; "" for nothing to insert.
	SQL func(first int) (string, []any)
	// Judge decides from what the insert returned, in the write's
	// transaction; an error rolls the write back.
	Judge func(ctx context.Context, tx bun.Tx, returned []string) error
}

// Response is the outcome of the work.
type Response struct {
	Status int
	Body   []byte
	// Store, when not nil, is stored for retries instead of Body: for an
	// answer that shows a secret once (a webhook endpoint's signing
	// secret), so that no secret is kept at rest in idempotency_keys.
	Store []byte
	// UserID ties the stored answer to a user so erasing them erases it.
	UserID *uuid.UUID
}

// Result is what the transport answers: Replayed marks a stored answer
// (Idempotent-Replayed: true).
type Result struct {
	Status   int
	Body     []byte
	Replayed bool
}

// Op is the work's view of the write: its transaction and the claim, for
// keys only known while working (an earn's reference).
type Op struct {
	Tx    bun.Tx
	claim *Claim
}

// Defer claims one more key when the work completes.
func (o *Op) Defer(key string) { o.claim.Defer(key) }

// MustCommit marks errors whose transaction holds effects that must stay
// (a counted wrong one-time code): Run releases the keys, commits, and
// returns the error; nothing is stored, so a retry runs again.
type MustCommit interface{ MustCommit() bool }

// TxRunner is what Run needs of the database (*bun.DB).
type TxRunner interface {
	bun.IDB
	RunInTx(ctx context.Context, opts *sql.TxOptions, fn func(ctx context.Context, tx bun.Tx) error) error
}

var errReplay = errors.New("idempotency: replay stored response")

// Run is the one exactly-once runner of every transport (REST partner and
// merchant writes, GraphQL mutations). It runs work in one transaction with
// the keys of req:
//
//   - first request: the work's effects and its response commit together;
//   - a retry with the same key and fingerprint, before, during (it waits
//     or conflicts) or after the original: the stored response, Replayed;
//   - the same key with another fingerprint: IDEMPOTENCY_KEY_REUSED;
//   - the work fails: everything rolls back and nothing is stored, so a
//     retry runs again, unless a deferred key shows an earlier success (a
//     retried earn hitting its own daily cap), which is then replayed;
//   - the work fails with a MustCommit error: its effects commit, the keys
//     are released, the error is returned.
func Run(ctx context.Context, db TxRunner, req Request, work func(ctx context.Context, op *Op) (Response, error)) (Result, error) {
	var res Result
	var committed error
	var claim *Claim
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		claim = BeginTx(tx, req.PartnerID, req.Fingerprint, req.Now)
		for _, k := range req.Keys {
			stored, err := claim.Key(ctx, k)
			if err != nil {
				return err
			}
			if stored != nil {
				res = Result{Status: stored.Status, Body: stored.Body, Replayed: true}
				return errReplay
			}
		}
		for _, k := range req.Deferred {
			claim.Defer(k)
		}
		out, err := work(ctx, &Op{Tx: tx, claim: claim})
		if err != nil {
			var mc MustCommit
			if errors.As(err, &mc) && mc.MustCommit() {
				committed = err
				return claim.Release(ctx)
			}
			return err
		}
		store := out.Body
		if out.Store != nil {
			store = out.Store
		}
		stored, returned, err := claim.complete(ctx, out.Status, store, out.UserID, req.Companion)
		if err != nil {
			return err
		}
		if stored != nil { // a concurrent or earlier request with the key won
			res = Result{Status: stored.Status, Body: stored.Body, Replayed: true}
			return errReplay
		}
		if req.Companion != nil {
			if err := req.Companion.Judge(ctx, tx, returned); err != nil {
				return err
			}
		}
		res = Result{Status: out.Status, Body: out.Body}
		return nil
	})
	switch {
	case errors.Is(err, errReplay):
		return res, nil
	case err != nil && claim != nil:
		// The work failed, perhaps because an earlier request with the same
		// key already did it: answer with that request's response. The
		// transaction may be aborted, so ask the pool.
		prior, perr := claim.Prior(context.WithoutCancel(ctx), db)
		switch {
		case perr != nil:
			return Result{}, perr
		case prior != nil:
			return Result{Status: prior.Status, Body: prior.Body, Replayed: true}, nil
		}
		return Result{}, err
	case err != nil:
		return Result{}, err
	case committed != nil:
		return Result{}, committed
	}
	return res, nil
}
