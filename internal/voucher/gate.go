package voucher

import (
	"context"
	"sync"

	"github.com/google/uuid"
)

// GiftGate admits at most PerGift claims of one gift at a time into their
// transaction, in this process. Claims of one gift serialise on its row
// anyway (ClaimTx takes it last and holds it to the commit); without the
// gate a storm of them waits inside PostgreSQL, each holding a connection
// and a backend, and the row's waiters and its versions (every claim
// updates it) make each claim slower the more wait. Waiting here costs a
// goroutine. Claims of other gifts are not held back.
type GiftGate struct {
	PerGift int

	mu    sync.Mutex
	gates map[uuid.UUID]*giftSlot
}

type giftSlot struct {
	ch    chan struct{}
	users int
}

// Enter waits for a place for a claim of gift, or for ctx; release gives
// the place back.
func (g *GiftGate) Enter(ctx context.Context, gift uuid.UUID) (release func(), err error) {
	if g == nil || g.PerGift <= 0 {
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

// Gifts reports how many gifts have claims inside or waiting (tests).
func (g *GiftGate) Gifts() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.gates)
}
