// Package ratelimit holds token-bucket limiters keyed by partner and scope
// (a partner's back end, or its consumers).
//
// Shared keeps the buckets in PostgreSQL, so limits hold across replicas,
// and leases tokens in batches so that a busy partner does not cost a
// round trip per request (see Shared). Limiter is the in-process bucket:
// Shared's fallback when the database fails, and the whole limiter when
// PERKS_RATE_LIMIT_SHARED is false (then N replicas allow N times the
// limit).
package ratelimit

import (
	"math"
	"sync"
	"time"
)

// Limit is a sustained rate and a burst. PerMinute 0 means unlimited; Burst
// 0 means "one minute's worth" (PerMinute).
type Limit struct {
	PerMinute int
	Burst     int
}

// Unlimited reports whether the limit lets everything through.
func (l Limit) Unlimited() bool { return l.PerMinute <= 0 }

func (l Limit) capacity() float64 {
	if l.Burst > 0 {
		return float64(l.Burst)
	}
	return float64(l.PerMinute)
}

// Result is the outcome of one Allow, with what the RateLimit-* headers
// report.
type Result struct {
	Allowed bool
	// Limit is the bucket's capacity (RateLimit-Limit).
	Limit int
	// Remaining is the whole tokens left after this request.
	Remaining int
	// Reset is how long until the bucket is full again (RateLimit-Reset).
	Reset time.Duration
	// RetryAfter is how long until one token is available, when refused.
	RetryAfter time.Duration
}

// Limiter holds the buckets.
type Limiter struct {
	Now func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

// maxBuckets bounds memory; past it, full (idle) buckets are dropped.
const maxBuckets = 100000

// Allow takes one token from key's bucket.
func (l *Limiter) Allow(key string, lim Limit) Result {
	if lim.Unlimited() {
		return Result{Allowed: true}
	}
	now := l.Now()
	capacity := lim.capacity()
	rate := float64(lim.PerMinute) / 60 // tokens per second

	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buckets == nil {
		l.buckets = map[string]*bucket{}
	}
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= maxBuckets {
			l.evict(now)
		}
		b = &bucket{tokens: capacity, at: now}
		l.buckets[key] = b
	}
	if elapsed := now.Sub(b.at).Seconds(); elapsed > 0 {
		b.tokens = math.Min(capacity, b.tokens+elapsed*rate)
		b.at = now
	}
	b.tokens = math.Min(b.tokens, capacity) // the limit may have shrunk
	res := Result{Limit: int(capacity)}
	if b.tokens >= 1 {
		b.tokens--
		res.Allowed = true
	} else {
		res.RetryAfter = seconds((1 - b.tokens) / rate)
	}
	res.Remaining = int(math.Floor(b.tokens))
	res.Reset = seconds((capacity - b.tokens) / rate)
	return res
}

func seconds(s float64) time.Duration {
	return time.Duration(math.Ceil(s)) * time.Second
}

func (l *Limiter) evict(now time.Time) {
	for k, b := range l.buckets {
		if now.Sub(b.at) > time.Hour {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) >= maxBuckets {
		l.buckets = map[string]*bucket{}
	}
}
