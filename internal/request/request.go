// Package request carries request-scoped facts (id, authenticated partner)
// from the middleware that learns them to the access log and error bodies.
package request

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync/atomic"
)

type ctxKey struct{}

// Info is shared by the handlers of one request; fields set late (the
// partner, once authenticated) are visible to the access log.
type Info struct {
	ID        string
	partnerID atomic.Value
	route     atomic.Value
	code      atomic.Value
}

// SetPartner records the authenticated partner for the access log.
func (i *Info) SetPartner(id string) { i.partnerID.Store(id) }

// Partner returns the recorded partner id or "".
func (i *Info) Partner() string { s, _ := i.partnerID.Load().(string); return s }

// SetCode records the error code the request was answered with (the
// first one, for a GraphQL answer with several errors) for the access log.
func (i *Info) SetCode(code string) { i.code.CompareAndSwap(nil, code) }

// Code returns the recorded error code or "".
func (i *Info) Code() string { s, _ := i.code.Load().(string); return s }

// SetRoute records the matched route pattern (for metrics labels).
func (i *Info) SetRoute(r string) { i.route.Store(r) }

// Route returns the matched route pattern or "".
func (i *Info) Route() string { s, _ := i.route.Load().(string); return s }

// NewID returns a random request id.
func NewID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// With stores info in ctx.
func With(ctx context.Context, info *Info) context.Context {
	return context.WithValue(ctx, ctxKey{}, info)
}

// From returns the request's Info, or a throwaway one outside a request.
func From(ctx context.Context) *Info {
	if i, ok := ctx.Value(ctxKey{}).(*Info); ok {
		return i
	}
	return &Info{}
}

// ID returns the request id, or "".
func ID(ctx context.Context) string { return From(ctx).ID }
