package ranking_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/ranking"
)

// TestAroundHashAgreesWithAround: AroundHash, which finds the user by their
// lookup hash in the statement that reads the neighbours' names, answers
// exactly what looking the user up and then calling Around answers, also
// when the board's guess from the hash is wrong (a prefix shared with
// another ranked user, or with a user no longer there), for a user with no
// points (not ranked) and for an unknown one (USER_NOT_FOUND).
func TestAroundHashAgreesWithAround(t *testing.T) {
	t.Parallel()
	type bundle struct {
		env     *apptest.Env
		partner uuid.UUID
		ids     map[string]uuid.UUID
	}
	setup := func(t *testing.T) *bundle {
		env := apptest.New(t)
		b := &bundle{env: env, partner: env.PartnerID("acme"), ids: map[string]uuid.UUID{}}
		for i, pts := range []int{50, 40, 40, 30, 20, 0} {
			ext := fmt.Sprintf("h%d", i)
			res := env.Partner("acme", http.MethodPost, "/integrations/users", []byte(`{"externalUserId":"`+ext+`","displayName":"H`+ext+`"}`))
			require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
			u, err := env.App.Users.Get(context.Background(), env.DB.Bun, b.partner, ext)
			require.NoError(t, err)
			b.ids[ext] = u.ID
			env.Clock.Advance(time.Second)
			if pts > 0 {
				res = env.Partner("acme", http.MethodPost, "/integrations/actions", []byte(fmt.Sprintf(`{"externalUserId":"%s","action":"purchase","points":%d}`, ext, pts)))
				require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.Body)
			}
		}
		require.NoError(t, env.App.Ranking.Load(context.Background(), env.DB.Bun, b.partner))
		return b
	}
	tests := []struct {
		name string
		ext  string
		// misguess, when set, is the user the board is made to guess.
		misguess func(b *bundle) uuid.UUID
		n        int
	}{
		{name: "right guess", ext: "h2", n: 1},
		{name: "top, wide", ext: "h0", n: 50},
		{name: "bottom of the ranked", ext: "h4", n: 2},
		{name: "guess is another ranked user", ext: "h3", n: 1, misguess: func(b *bundle) uuid.UUID { return b.ids["h0"] }},
		{name: "guess is a user not ranked", ext: "h1", n: 2, misguess: func(b *bundle) uuid.UUID { return b.ids["h5"] }},
		{name: "guess is nobody", ext: "h4", n: 1, misguess: func(*bundle) uuid.UUID { return uuid.New() }},
		{name: "no points: not ranked", ext: "h5", n: 3},
		{name: "no points, guessed as a ranked user", ext: "h5", n: 3, misguess: func(b *bundle) uuid.UUID { return b.ids["h2"] }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			ctx := context.Background()
			svc, db := b.env.App.Ranking, b.env.DB.Bun
			hash := b.env.App.Users.ExternalIDHash(b.partner, tt.ext)
			if tt.misguess != nil {
				require.NoError(t, svc.MisguessForTest(ctx, db, b.partner, hash, tt.misguess(b)))
			}
			want, err := svc.Around(ctx, db, b.partner, b.ids[tt.ext], tt.n)
			require.NoError(t, err)
			id, got, err := svc.AroundHash(ctx, db, b.partner, hash, tt.n)
			require.NoError(t, err)
			require.Equal(t, b.ids[tt.ext], id)
			require.Equal(t, want, got)
		})
	}

	t.Run("unknown user", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		hash := b.env.App.Users.ExternalIDHash(b.partner, "nobody")
		for _, guess := range []uuid.UUID{uuid.Nil, b.ids["h0"]} {
			if guess != uuid.Nil {
				require.NoError(t, b.env.App.Ranking.MisguessForTest(context.Background(), b.env.DB.Bun, b.partner, hash, guess))
			}
			_, _, err := b.env.App.Ranking.AroundHash(context.Background(), b.env.DB.Bun, b.partner, hash, 1)
			require.Equal(t, apperr.CodeUserNotFound, apperr.CodeOf(err))
		}
	})

	t.Run("n out of range", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		_, _, err := b.env.App.Ranking.AroundHash(context.Background(), b.env.DB.Bun, b.partner, b.env.App.Users.ExternalIDHash(b.partner, "h0"), ranking.MaxAround+1)
		require.Equal(t, apperr.CodeInvalidField, apperr.CodeOf(err))
	})
}
