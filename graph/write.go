package graph

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/graph/model"
	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/auth"
	"github.com/perkshq/perks/internal/earning"
	"github.com/perkshq/perks/internal/idempotency"
	"github.com/perkshq/perks/internal/ranking"
)

// consumer returns the authenticated user or the reason there is none.
func consumer(ctx context.Context) (*auth.ConsumerPrincipal, error) {
	return auth.ConsumerFrom(ctx)
}

// idempotentTx runs fn in a transaction keyed by the user's idempotency key
// (idempotency.Run, claimed up front): the first call stores fn's JSON
// result with its effects, a retry with the same key and operation gets
// that result back without running fn, and the same key for another
// operation is refused.
func idempotentTx[T any](ctx context.Context, r *Resolver, c *auth.ConsumerPrincipal, op, key string, args []byte, fn func(ctx context.Context, tx bun.Tx) (*T, error)) (*T, error) {
	if err := idempotency.ValidateKey("idempotencyKey", key); err != nil {
		return nil, err
	}
	req := idempotency.Request{
		PartnerID:   c.Partner.ID,
		Fingerprint: idempotency.Fingerprint([]byte(op), args),
		Now:         r.Now(),
		Keys:        []string{"user:" + c.User.ID.String() + ":" + key},
	}
	var out *T
	res, err := idempotency.Run(ctx, r.DB.Bun, req, func(ctx context.Context, o *idempotency.Op) (idempotency.Response, error) {
		v, err := fn(ctx, o.Tx)
		if err != nil {
			return idempotency.Response{}, err
		}
		out = v
		b, err := json.Marshal(v)
		return idempotency.Response{Status: 200, Body: b, UserID: &c.User.ID}, err
	})
	if err != nil {
		return nil, err
	}
	if res.Replayed {
		out = new(T)
		if err := json.Unmarshal(res.Body, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Cursors are opaque to clients: base64 of "<kind>:<id>".
func encodeCursor(kind string, id int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(kind + ":" + strconv.FormatInt(id, 10)))
}

func decodeCursor(kind string, s *string) (int64, error) {
	if s == nil || *s == "" {
		return 0, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(*s)
	if err == nil {
		if k, v, ok := strings.Cut(string(b), ":"); ok && k == kind {
			if id, err := strconv.ParseInt(v, 10, 64); err == nil && id > 0 {
				return id, nil
			}
		}
	}
	return 0, apperr.Field(apperr.CodeInvalidField, "after", "after is not a cursor of this list")
}

func pageSize(first *int, def, max int) (int, error) {
	if first == nil {
		return def, nil
	}
	if *first < 1 || *first > max {
		return 0, apperr.Field(apperr.CodeInvalidField, "first", "first must be between 1 and %d", max)
	}
	return *first, nil
}

func leaderboardEntries(es []ranking.Entry, me uuid.UUID) []*model.LeaderboardEntry {
	out := make([]*model.LeaderboardEntry, 0, len(es))
	for _, e := range es {
		out = append(out, &model.LeaderboardEntry{Rank: int(e.Rank), DisplayName: e.DisplayName, LifetimePoints: int(e.Score), IsMe: e.UserID == me})
	}
	return out
}

// programAction is an offered action as the app shows it, with the user's
// remaining caps (none without a user); earning decides what is offered.
func programAction(o *earning.Offer) *model.ProgramAction {
	rule, a := o.Rule, o.Availability
	return &model.ProgramAction{
		Code: rule.Code, Name: rule.Name, Description: rule.Description, Points: int(rule.Points),
		DailyCap: rule.DailyCap, LifetimeCap: rule.LifetimeCap, CooldownSeconds: rule.CooldownSeconds,
		RemainingToday: a.RemainingToday, RemainingLifetime: a.RemainingLifetime, AvailableAt: a.AvailableAt,
	}
}
