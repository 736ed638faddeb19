package ratelimit

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// Shared is a token-bucket limiter whose buckets live in PostgreSQL
// (rate_limit_buckets), so that every replica draws from the same bucket:
// three replicas behind one address allow a partner its limit, not three
// times it.
//
// A database round trip per request would put a hot row on every call of
// a busy partner, so a replica leases tokens: it takes up to Lease(lim)
// tokens from the shared bucket in one statement and spends them locally.
// Tokens only ever leave the shared bucket through a lease, so the total
// admitted across replicas never exceeds what the bucket holds. Two edges
// follow from leasing:
//
//   - A lease not spent within LeaseTTL is dropped (not returned), so a
//     replica cannot hoard tokens and spend them on top of a refilled
//     bucket later. A quiet replica wastes at most Lease-1 tokens a second.
//   - Small buckets (capacity up to 50) lease one token at a time: every
//     request is counted in PostgreSQL, exactly.
//
// A refused lease is remembered until a token is due (RetryAfter), so a
// partner over its limit does not turn into one statement per refused
// request. If the database cannot be reached, Allow falls back to the
// replica's own in-process bucket (Local): limits stay per replica until
// it answers again, rather than refusing everything or nothing.
type Shared struct {
	DB  bun.IDB
	Now func() time.Time
	// Local is the fallback limiter when a lease fails.
	Local *Limiter
	// OnError, when set, is told of a failed lease (the caller logs it).
	OnError func(error)

	mu      sync.Mutex
	pockets map[pocketKey]*pocket
}

// LeaseTTL is how long leased tokens may wait on a replica before they are
// dropped.
const LeaseTTL = time.Second

// maxLease bounds the tokens leased at once.
const maxLease = 100

// Lease is how many tokens a replica takes from the shared bucket at a
// time: a fiftieth of the capacity, at least one, at most maxLease.
func Lease(lim Limit) int {
	return max(1, min(maxLease, int(lim.capacity()/50)))
}

type pocketKey struct {
	partner uuid.UUID
	scope   string
}

// pocket is a replica's share of one bucket: the tokens it leased and what
// the shared bucket held after the lease (for the RateLimit-* headers).
type pocket struct {
	mu         sync.Mutex
	tokens     int
	expires    time.Time
	shared     float64 // the shared bucket's tokens after the last lease
	emptyUntil time.Time
	used       time.Time
}

// Allow takes one token from the partner's bucket of scope ("partner" for
// its back end, "consumer" for its users).
func (s *Shared) Allow(ctx context.Context, partnerID uuid.UUID, scope string, lim Limit) Result {
	if lim.Unlimited() {
		return Result{Allowed: true}
	}
	now := s.Now()
	capacity := lim.capacity()
	rate := float64(lim.PerMinute) / 60
	pk := s.pocket(pocketKey{partnerID, scope}, now)
	pk.mu.Lock()
	defer pk.mu.Unlock()
	pk.used = now
	if !now.Before(pk.expires) {
		pk.tokens = 0
	}
	res := Result{Limit: int(capacity)}
	if pk.tokens == 0 && now.Before(pk.emptyUntil) {
		return s.refused(res, pk, now, capacity, rate)
	}
	if pk.tokens == 0 {
		granted, left, err := s.lease(ctx, partnerID, scope, Lease(lim), capacity, rate, now)
		if err != nil {
			if s.OnError != nil {
				s.OnError(err)
			}
			return s.Local.Allow(scope+":"+partnerID.String(), lim)
		}
		pk.tokens, pk.shared, pk.expires = granted, left, now.Add(LeaseTTL)
		if granted == 0 {
			pk.emptyUntil = now.Add(time.Duration((1 - left) / rate * float64(time.Second)))
			return s.refused(res, pk, now, capacity, rate)
		}
	}
	pk.tokens--
	res.Allowed = true
	res.Remaining = int(math.Floor(pk.shared)) + pk.tokens
	res.Reset = seconds((capacity - pk.shared - float64(pk.tokens)) / rate)
	return res
}

func (s *Shared) refused(res Result, pk *pocket, now time.Time, capacity, rate float64) Result {
	res.RetryAfter = max(time.Second, time.Duration(math.Ceil(pk.emptyUntil.Sub(now).Seconds()))*time.Second)
	res.Reset = seconds((capacity - pk.shared) / rate)
	return res
}

// pocket returns the replica's pocket for k, dropping idle ones when there
// are too many.
func (s *Shared) pocket(k pocketKey, now time.Time) *pocket {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pockets == nil {
		s.pockets = map[pocketKey]*pocket{}
	}
	pk := s.pockets[k]
	if pk == nil {
		if len(s.pockets) >= maxBuckets {
			for k, p := range s.pockets {
				if p.mu.TryLock() {
					if now.Sub(p.used) > time.Minute {
						delete(s.pockets, k)
					}
					p.mu.Unlock()
				}
			}
		}
		pk = &pocket{}
		s.pockets[k] = pk
	}
	return pk
}

// leaseSQL refills the shared bucket for the time since its last lease
// (never backwards: replicas' clocks differ a little), takes up to want
// whole tokens and returns how many it took and what is left. A missing
// bucket starts full. The row lock of the upsert serialises replicas.
const leaseSQL = `INSERT INTO rate_limit_buckets AS b (partner_id, scope, tokens, at, granted)
	VALUES (?0, ?1, ?3 - least(?2, floor(?3)), ?5, least(?2, floor(?3)))
	ON CONFLICT (partner_id, scope) DO UPDATE SET
		granted = least(?2, floor(least(?3, b.tokens + greatest(0, extract(epoch FROM ?5 - b.at)) * ?4))),
		tokens = least(?3, b.tokens + greatest(0, extract(epoch FROM ?5 - b.at)) * ?4)
			- least(?2, floor(least(?3, b.tokens + greatest(0, extract(epoch FROM ?5 - b.at)) * ?4))),
		at = greatest(b.at, ?5)
	RETURNING granted, tokens`

func (s *Shared) lease(ctx context.Context, partnerID uuid.UUID, scope string, want int, capacity, rate float64, now time.Time) (int, float64, error) {
	var granted int
	var left float64
	err := s.DB.NewRaw(leaseSQL, partnerID, scope, want, capacity, rate, now).Scan(ctx, &granted, &left)
	if err != nil {
		return 0, 0, fmt.Errorf("lease %s tokens: %w", scope, err)
	}
	return granted, left, nil
}
