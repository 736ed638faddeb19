package tracing_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/tracing"
)

func TestSanitizeSQL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in, want string
	}{
		{"strings and numbers", `SELECT "u"."id" FROM "users" AS "u" WHERE ("u"."email" = 'ann@example.com') AND (u.points > 120) LIMIT 1`,
			`SELECT "u"."id" FROM "users" AS "u" WHERE ("u"."email" = ?) AND (u.points > ?) LIMIT ?`},
		{"doubled quote", `INSERT INTO t (a) VALUES ('O''Brien', -3.5e+2)`, `INSERT INTO t (a) VALUES (?, -?)`},
		{"E string with backslash quote", `SELECT E'it\'s ann@example.com' , 1`, `SELECT ? , ?`},
		{"arrays, json, bytea, casts", `SELECT x FROM unnest('{"a@b.c","d"}'::text[], '{"k":"secret"}'::jsonb, '\x0102'::bytea)`,
			`SELECT x FROM unnest(?::text[], ?::jsonb, ?::bytea)`},
		{"identifiers with digits stay", `SELECT t1.col2, e FROM t1 JOIN "2fa" ON true`, `SELECT t1.col2, e FROM t1 JOIN "2fa" ON true`},
		{"placeholders stay, dollar quotes go", `SELECT $1, $$ann@example.com$$, $tag$x$tag$`, `SELECT $1, ?, ?`},
		{"comments dropped, white space folded", "SELECT /* ann@example.com */ 1 -- usr_42\n  FROM\n\tt", `SELECT ? FROM t`},
		{"unterminated literal", `SELECT 'ann@exa`, `SELECT ?`},
		{"quoted identifier with quote", `SELECT "a""b" FROM t`, `SELECT "a""b" FROM t`},
		{"uuid and timestamp", `UPDATE t SET at = '2026-11-25 10:00:00+00:00' WHERE id = 'c0a8e5c2-1b7e-4c1f-9a43-3b1d2c8f0e11'`,
			`UPDATE t SET at = ? WHERE id = ?`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, tracing.SanitizeSQL(tc.in, 1000))
		})
	}
	t.Run("cut at max", func(t *testing.T) {
		t.Parallel()
		got := tracing.SanitizeSQL("SELECT "+strings.Repeat("col, ", 1000)+"x FROM t", 64)
		require.LessOrEqual(t, len(got), 64)
		require.True(t, strings.HasPrefix(got, "SELECT col, col,"), got)
	})
}
