package auth

import (
	"context"

	"github.com/perkshq/perks/internal/apperr"
)

type ctxKey int

const (
	partnerKey ctxKey = iota
	consumerKey
)

// WithPartner stores an authenticated partner in ctx.
func WithPartner(ctx context.Context, p *PartnerPrincipal) context.Context {
	return context.WithValue(ctx, partnerKey, p)
}

// PartnerFrom returns the authenticated partner, or nil.
func PartnerFrom(ctx context.Context) *PartnerPrincipal {
	p, _ := ctx.Value(partnerKey).(*PartnerPrincipal)
	return p
}

type consumerResult struct {
	principal *ConsumerPrincipal
	err       error
}

// WithConsumer stores the outcome of consumer authentication: a principal, or
// the error that operations needing a user must report. Operations that work
// without a user (public program info) ignore it.
func WithConsumer(ctx context.Context, p *ConsumerPrincipal, err error) context.Context {
	return context.WithValue(ctx, consumerKey, consumerResult{p, err})
}

// ConsumerFrom returns the authenticated user or the reason there is none.
func ConsumerFrom(ctx context.Context) (*ConsumerPrincipal, error) {
	r, ok := ctx.Value(consumerKey).(consumerResult)
	if !ok || (r.principal == nil && r.err == nil) {
		return nil, apperr.New(apperr.CodeUnauthenticated, "a consumer token is required (Authorization: Bearer <token>)")
	}
	return r.principal, r.err
}
