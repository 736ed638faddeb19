package partner

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// AuthChannel is the PostgreSQL notification channel a change to partners,
// partner_credentials (other than recording use) or consumer_keys notifies,
// from triggers (migration 20261130400000_partner_auth_cache).
const AuthChannel = "perks_partner_auth"

// Cache keeps in memory what authentication reads on every request: the
// partner, its HMAC and request-JWT secrets opened, its Ed25519 keys, its
// consumer keys. A signed earn then costs no partner query, no AES opening
// and no PEM parsing.
//
// It is correct across replicas because PostgreSQL tells every replica:
// triggers notify AuthChannel at the commit of any change, and each
// replica's listener (Listen) empties its cache when notified. The cache
// serves nothing while its listener is not listening (before the first
// LISTEN, after a lost connection until it listens again), so a missed
// notification cannot leave a stale entry: every reconnection starts
// empty. Between a commit and the notification's arrival (a few
// milliseconds) another replica may still accept the old state; a change
// made by this process (Service's write methods call Invalidate) is seen
// at once by this process.
//
// Entries are whole answers keyed by the lookup; misses and errors are
// never cached (an unknown slug always reads the database). Any
// notification empties the whole cache: partners change rarely, and a
// partial invalidation would have to know which lookups a change affects
// (a new key's kid changes another partner's kid lookup).
type Cache struct {
	mu sync.Mutex
	// live is true while the listener is listening.
	live bool
	// gen counts invalidations: a load that began before one is not stored.
	gen uint64
	// holdUntil bypasses the cache after a local write until the write's own
	// notification (any notification) arrives, or this time passes (the
	// write rolled back and sent none).
	holdUntil time.Time
	entries   map[string]any
	now       func() time.Time
	// notified counts notifications received (tests).
	notified uint64
}

// maxCacheEntries bounds the cache; when full it starts over.
const maxCacheEntries = 10_000

// holdAfterWrite is how long a local write bypasses the cache when its
// notification does not come (a rolled back transaction).
const holdAfterWrite = 5 * time.Second

// NewCache returns a cache that serves nothing until Listen listens.
func NewCache() *Cache {
	return &Cache{entries: map[string]any{}, now: time.Now}
}

// get answers key from the cache, or from load, storing the answer when no
// invalidation happened meanwhile.
func (c *Cache) get(key string, load func() (any, error)) (any, error) {
	if c == nil {
		return load()
	}
	c.mu.Lock()
	if !c.live || c.now().Before(c.holdUntil) {
		c.mu.Unlock()
		return load()
	}
	if v, ok := c.entries[key]; ok {
		c.mu.Unlock()
		return v, nil
	}
	gen := c.gen
	c.mu.Unlock()
	v, err := load()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.live && c.gen == gen {
		if len(c.entries) >= maxCacheEntries {
			c.entries = map[string]any{}
		}
		c.entries[key] = v
	}
	return v, nil
}

// reset empties the cache; the caller holds mu.
func (c *Cache) reset() {
	c.gen++
	clear(c.entries)
}

// Invalidate empties the cache and bypasses it until the next notification
// (or holdAfterWrite): this process's own writes call it before their
// transaction commits, so that a load running meanwhile, which still reads
// the old rows, is not served after the commit.
func (c *Cache) Invalidate() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reset()
	c.holdUntil = c.now().Add(holdAfterWrite)
}

func (c *Cache) notify() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reset()
	c.holdUntil = time.Time{}
	c.notified++
}

func (c *Cache) setLive(live bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reset()
	c.live = live
}

// Live reports whether the cache is serving (its listener is listening).
func (c *Cache) Live() bool {
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.live
}

// Serving reports whether the cache answers from memory now: listening,
// and not bypassed after a local write (tests that count statements wait
// for it).
func (c *Cache) Serving() bool {
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.live && !c.now().Before(c.holdUntil)
}

// Epoch returns the number of invalidations so far and whether the cache
// serves now (Serving). A value another package derives from cached answers
// (auth's verified consumer tokens) records the epoch read before its
// lookups began, and is used only while Epoch returns that same number with
// serving true: any notification, local write or lost listener since then
// makes it stale, exactly as it empties this cache.
func (c *Cache) Epoch() (gen uint64, serving bool) {
	if c == nil {
		return 0, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen, c.live && !c.now().Before(c.holdUntil)
}

// Notifications reports how many notifications the listener received.
func (c *Cache) Notifications() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.notified
}

// Listen listens on AuthChannel over connections from connect until ctx
// ends, reconnecting after a failure (the cache bypassed meanwhile). The
// connection must be a session of its own: LISTEN does not work through a
// transaction pooler (PERKS_DIRECT_DATABASE_URL, docs/scaling.md).
func (c *Cache) Listen(ctx context.Context, connect func(context.Context) (*pgx.Conn, error), log *slog.Logger) {
	if log == nil {
		log = slog.Default()
	}
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := c.listenOnce(ctx, connect)
		c.setLive(false)
		if ctx.Err() != nil {
			return
		}
		log.Warn("partner cache: not listening; authentication reads the database until it listens again",
			"error", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (c *Cache) listenOnce(ctx context.Context, connect func(context.Context) (*pgx.Conn, error)) error {
	conn, err := connect(ctx)
	if err != nil {
		return err
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = conn.Close(closeCtx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+AuthChannel); err != nil {
		return err
	}
	c.setLive(true)
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		c.notify()
	}
}
