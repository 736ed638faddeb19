package voucher

import (
	"context"
	"sync"

	"github.com/google/uuid"
)

// ClaimGate bounds the claims this process runs at once, so that a storm
// waits in the process (a goroutine each, in arrival order) instead of
// inside PostgreSQL, where every waiting claim holds a connection and a
// backend and makes each claim slower the more there are.
//
// AtOnce bounds the claims of any gifts (PERKS_CLAIMS_AT_ONCE): the claim
// storm of cmd/bench is fastest and fairest with about 8 backends per core
// busy with claims (docs/benchmarks.md, "Issue 18, session 7: the
// integrator's quiet run"). One queue for all gifts keeps the waits equal:
// a queue per gift made a storm's slowest claims those of its most claimed
// gifts. PerGift (PERKS_CLAIMS_PER_GIFT) additionally bounds the claims of
// one gift; it mattered when a gift's claims serialised on its row, and is
// off by default since they spread over the gift's claim slots.
type ClaimGate struct {
	AtOnce  int
	PerGift int

	once sync.Once
	all  chan struct{}

	mu    sync.Mutex
	gates map[uuid.UUID]*giftSlot
}

type giftSlot struct {
	ch    chan struct{}
	users int
}

// Enter waits for a place for a claim of gift (its gift's first, then the
// process's), or for ctx; release gives the places back.
func (g *ClaimGate) Enter(ctx context.Context, gift uuid.UUID) (release func(), err error) {
	if g == nil {
		return func() {}, nil
	}
	leaveGift, err := g.enterGift(ctx, gift)
	if err != nil {
		return nil, err
	}
	if g.AtOnce <= 0 {
		return leaveGift, nil
	}
	all := g.places()
	select {
	case all <- struct{}{}:
		return func() { <-all; leaveGift() }, nil
	case <-ctx.Done():
		leaveGift()
		return nil, ctx.Err()
	}
}

// enterGift waits for a place among the claims of gift (PerGift).
func (g *ClaimGate) enterGift(ctx context.Context, gift uuid.UUID) (release func(), err error) {
	if g.PerGift <= 0 {
		return func() {}, nil
	}
	g.mu.Lock()
	if g.gates == nil {
		g.gates = map[uuid.UUID]*giftSlot{}
	}
	s := g.gates[gift]
	if s == nil {
		s = &giftSlot{ch: make(chan struct{}, g.PerGift)}
		g.gates[gift] = s
	}
	s.users++
	g.mu.Unlock()
	leave := func() {
		g.mu.Lock()
		s.users--
		if s.users == 0 {
			delete(g.gates, gift)
		}
		g.mu.Unlock()
	}
	select {
	case s.ch <- struct{}{}:
		return func() { <-s.ch; leave() }, nil
	case <-ctx.Done():
		leave()
		return nil, ctx.Err()
	}
}

// Gifts reports how many gifts have claims inside or waiting under PerGift
// (tests).
func (g *ClaimGate) Gifts() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.gates)
}

// Inside reports how many claims hold a place under AtOnce (tests).
func (g *ClaimGate) Inside() int {
	if g.AtOnce <= 0 {
		return 0
	}
	return len(g.places())
}

// places is the channel of AtOnce places, made on first use so that a
// ClaimGate literal is ready as written.
func (g *ClaimGate) places() chan struct{} {
	g.once.Do(func() { g.all = make(chan struct{}, g.AtOnce) })
	return g.all
}
