package webhook

import (
	"context"
	"sync"
	"sync/atomic"
)

// batcher groups the calls that concurrent delivery workers make at the
// same moment into one call of run: the delivery queue's workers each load
// their delivery and record their attempt, and at hundreds of deliveries a
// second one statement for whatever is waiting costs a fraction of one
// statement each (group commit).
//
// It never waits to fill a batch: the first caller finding nobody running
// runs at once, with everything already queued (at most max); callers that
// arrive meanwhile queue, and when the running batch returns, the first of
// them runs the next one. One worker alone therefore pays no latency, and
// under load the batches grow with the queue.
//
// run gets a context detached from any one caller (a caller giving up must
// not fail the others' batch), bounded by timeout; it returns one result
// per request, in order, or an error for the whole batch.
type batcher[Q, R any] struct {
	max     int
	timeout timeoutFunc
	run     func(ctx context.Context, reqs []Q) ([]R, error)

	mu      sync.Mutex
	pending []*batchCall[Q, R]
	running bool

	runs atomic.Int64 // batches run, for tests
}

type timeoutFunc func(context.Context) (context.Context, context.CancelFunc)

type batchCall[Q, R any] struct {
	req  Q
	res  R
	err  error
	done chan struct{} // closed when res and err are set
	lead chan struct{} // closed when this call must run the next batch
}

func (b *batcher[Q, R]) do(ctx context.Context, req Q) (R, error) {
	c := &batchCall[Q, R]{req: req, done: make(chan struct{}), lead: make(chan struct{})}
	b.mu.Lock()
	b.pending = append(b.pending, c)
	if b.running {
		b.mu.Unlock()
		select {
		case <-c.done:
			return c.res, c.err
		case <-c.lead:
		}
	} else {
		b.running = true
		b.mu.Unlock()
	}
	// This caller leads: take what is queued (itself included) and run it.
	b.mu.Lock()
	n := min(len(b.pending), b.max)
	calls := b.pending[:n:n]
	b.pending = b.pending[n:]
	b.mu.Unlock()

	reqs := make([]Q, len(calls))
	for i, c := range calls {
		reqs[i] = c.req
	}
	rctx, cancel := b.timeout(context.WithoutCancel(ctx))
	b.runs.Add(1)
	res, err := b.run(rctx, reqs)
	cancel()
	for i, c := range calls {
		if err != nil {
			c.err = err
		} else {
			c.res = res[i]
		}
		close(c.done)
	}

	// Hand over to the first caller still queued, or stop running.
	b.mu.Lock()
	if len(b.pending) > 0 {
		close(b.pending[0].lead)
	} else {
		b.running = false
	}
	b.mu.Unlock()
	<-c.done // the leader's own call was in the batch it ran
	return c.res, c.err
}
