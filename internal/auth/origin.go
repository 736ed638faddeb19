package auth

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/perkshq/perks/internal/apperr"
)

// Resolver resolves host names; *net.Resolver satisfies it. Tests inject a
// map so they never use DNS.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// OriginChecker enforces a partner's allowed origins: IP addresses, CIDRs
// and host names. Host names are resolved through Resolver and the answer is
// cached for TTL; when a refresh fails the last answer is used for up to
// StaleFor more, so a DNS blip does not lock a partner out.
type OriginChecker struct {
	Resolver Resolver
	TTL      time.Duration
	StaleFor time.Duration
	// LookupTimeout bounds one resolution.
	LookupTimeout time.Duration
	Now           func() time.Time

	mu    sync.Mutex
	cache map[string]resolved
}

type resolved struct {
	addrs     []netip.Addr
	goodAt    time.Time // when addrs were resolved
	checkedAt time.Time // last attempt, successful or not
}

// usable returns the addresses while they are within TTL+StaleFor of their
// resolution.
func (o *OriginChecker) usable(r resolved, now time.Time) []netip.Addr {
	if now.Sub(r.goodAt) < o.TTL+o.StaleFor {
		return r.addrs
	}
	return nil
}

// maxResolvedHosts bounds the cache.
const maxResolvedHosts = 10000

// Check answers nil when allowed is empty or ip matches an entry, else
// 403 ORIGIN_NOT_ALLOWED.
func (o *OriginChecker) Check(ctx context.Context, allowed []string, ip netip.Addr) error {
	if len(allowed) == 0 {
		return nil
	}
	ip = ip.Unmap()
	if ip.IsValid() {
		var hosts []string
		for _, entry := range allowed {
			if a, err := netip.ParseAddr(entry); err == nil {
				if a.Unmap() == ip {
					return nil
				}
				continue
			}
			if p, err := netip.ParsePrefix(entry); err == nil {
				if p.Contains(ip) {
					return nil
				}
				continue
			}
			hosts = append(hosts, entry)
		}
		// Literal entries first: they need no resolution.
		for _, h := range hosts {
			for _, a := range o.lookup(ctx, h) {
				if a.Unmap() == ip {
					return nil
				}
			}
		}
	}
	return apperr.New(apperr.CodeOriginNotAllowed, "requests from this address are not allowed for this partner")
}

func (o *OriginChecker) lookup(ctx context.Context, host string) []netip.Addr {
	host = strings.ToLower(host)
	now := o.Now()
	o.mu.Lock()
	r, ok := o.cache[host]
	o.mu.Unlock()
	if ok && now.Sub(r.checkedAt) < o.TTL {
		return o.usable(r, now)
	}
	if o.Resolver == nil {
		return nil
	}
	timeout := o.LookupTimeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	addrs, err := o.Resolver.LookupNetIP(lctx, "ip", host)
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.cache == nil || len(o.cache) >= maxResolvedHosts {
		o.cache = map[string]resolved{}
	}
	if err != nil {
		// Keep the last good answer (within StaleFor) and do not retry
		// before another TTL, so a dead name costs one lookup per TTL.
		r.checkedAt = now
		o.cache[host] = r
		return o.usable(r, now)
	}
	o.cache[host] = resolved{addrs: addrs, goodAt: now, checkedAt: now}
	return addrs
}
