package rest

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/partner"
	"github.com/perkshq/perks/internal/ratelimit"
)

// RateLimits are the configured defaults; a partner's own columns override
// them.
type RateLimits struct {
	Limiter *ratelimit.Limiter
	// Shared, when set, holds the buckets in PostgreSQL so that limits
	// hold across replicas (Limiter is then only its fallback).
	Shared   *ratelimit.Shared
	Partner  ratelimit.Limit
	Consumer ratelimit.Limit
}

func pick(own *int, def int) int {
	if own != nil {
		return *own
	}
	return def
}

// limitFor returns the effective back-end or consumer limit of a partner.
func (rl *RateLimits) limitFor(p *partner.Partner, consumer bool) ratelimit.Limit {
	if consumer {
		return ratelimit.Limit{
			PerMinute: pick(p.ConsumerRateLimitPerMinute, rl.Consumer.PerMinute),
			Burst:     pick(p.ConsumerRateLimitBurst, rl.Consumer.Burst),
		}
	}
	return ratelimit.Limit{
		PerMinute: pick(p.RateLimitPerMinute, rl.Partner.PerMinute),
		Burst:     pick(p.RateLimitBurst, rl.Partner.Burst),
	}
}

// Take counts one call of the partner's back end (consumer=false) or of its
// users (consumer=true), writes the RateLimit-* headers (on every answer,
// so clients can pace themselves) and returns RATE_LIMITED when the bucket
// is empty. Back end and consumers have separate buckets, so a burst of app
// traffic never starves the partner's server-to-server calls.
func (rl *RateLimits) Take(ctx context.Context, w http.ResponseWriter, p *partner.Partner, consumer bool) error {
	if rl == nil || (rl.Limiter == nil && rl.Shared == nil) {
		return nil
	}
	lim := rl.limitFor(p, consumer)
	if lim.Unlimited() {
		return nil
	}
	scope := "partner"
	if consumer {
		scope = "consumer"
	}
	var res ratelimit.Result
	if rl.Shared != nil {
		res = rl.Shared.Allow(ctx, p.ID, scope, lim)
	} else {
		res = rl.Limiter.Allow(scope+":"+p.ID.String(), lim)
	}
	h := w.Header()
	h.Set("RateLimit-Limit", strconv.Itoa(res.Limit))
	h.Set("RateLimit-Remaining", strconv.Itoa(res.Remaining))
	h.Set("RateLimit-Reset", strconv.Itoa(int(res.Reset.Seconds())))
	if !res.Allowed {
		e := apperr.New(apperr.CodeRateLimited, "too many requests for this partner; retry in %d seconds", int(res.RetryAfter.Seconds()))
		e.RetryAfterSeconds = int(res.RetryAfter.Seconds())
		return e
	}
	return nil
}

// ClientIP is the caller's address: RemoteAddr, or, when RemoteAddr is a
// trusted proxy, the right-most X-Forwarded-For entry that is not itself a
// trusted proxy (entries left of it could be forged by the client). An
// unparsable entry yields the zero Addr, which matches no allowed origin.
func ClientIP(r *http.Request, trusted []*net.IPNet) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	remote, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	remote = remote.Unmap()
	isTrusted := func(a netip.Addr) bool {
		for _, n := range trusted {
			if n.Contains(a.AsSlice()) {
				return true
			}
		}
		return false
	}
	if !isTrusted(remote) {
		return remote
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	client := remote
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return netip.Addr{}
		}
		client = a.Unmap()
		if !isTrusted(client) {
			return client
		}
	}
	return client
}
