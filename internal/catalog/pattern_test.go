package catalog_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/catalog"
)

func ptr[T any](v T) *T { return &v }

func TestPatternCapacityAndEntropy(t *testing.T) {
	t.Parallel()
	cases := []struct {
		pattern string
		stock   *int
		ok      bool
	}{
		{"ACME-####-XXXX", nil, true},         // 10^4 * 24^4 = 3.3e9 >= 1e9
		{"ACME-######", nil, false},           // 1e6 < 1e9 for unlimited stock
		{"ACME-######", ptr(1000), true},      // 1e6 >= max(1e6, 1000*1000)
		{"ACME-######", ptr(1001), false},     // needs 1.001e6
		{"TOTE-XXXX-####", ptr(3), true},      // the demo's stock-3 gift
		{"AB-####", ptr(1), false},            // below the 1e6 floor whatever the stock
		{"acme-####-XXXX", nil, false},        // lower case literals are not allowed
		{"AC ME-####-XXXX", nil, false},       // spaces
		{"-ACME-########", nil, false},        // must start with a letter, digit or placeholder
		{"##", nil, false},                    // too short
		{strings.Repeat("#", 65), nil, false}, // too long
	}
	for _, c := range cases {
		_, err := catalog.ParsePattern("codePattern", c.pattern, c.stock)
		if c.ok {
			require.NoError(t, err, c.pattern)
		} else {
			require.Error(t, err, c.pattern)
			require.Equal(t, apperr.CodeInvalidField, apperr.CodeOf(err), c.pattern)
		}
	}
	require.InDelta(t, 3.31776e9, catalog.Pattern("ACME-####-XXXX").Capacity(), 1)
}

// TestPatternGenerate: placeholders are filled from their alphabets (no I,
// no O), literals are kept, codes are valid codes and differ.
func TestPatternGenerate(t *testing.T) {
	t.Parallel()
	p := catalog.Pattern("ACME-####-XXXX")
	seen := map[string]bool{}
	for i := 0; i < 2000; i++ {
		c, err := p.Generate()
		require.NoError(t, err)
		require.Regexp(t, `^ACME-[0-9]{4}-[A-HJ-NP-Z]{4}$`, c)
		require.NoError(t, catalog.ValidateCode("code", c))
		seen[c] = true
	}
	require.Greater(t, len(seen), 1990, "random, not sequential")
	require.NotContains(t, catalog.LetterAlphabet, "I")
	require.NotContains(t, catalog.LetterAlphabet, "O")
	require.Len(t, catalog.LetterAlphabet, 24)
}

func TestValidateCode(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"ABC", "COFFEE-DEMO-0001", "a.b_c-d", strings.Repeat("Z", 64)} {
		require.NoError(t, catalog.ValidateCode("code", ok), ok)
	}
	for _, bad := range []string{"", "AB", "-ABC", "A B", "A/B", "A,B", strings.Repeat("Z", 65), "ÄBC"} {
		require.Error(t, catalog.ValidateCode("code", bad), bad)
	}
}

func TestCursorRoundTrip(t *testing.T) {
	t.Parallel()
	c := catalog.Cursor{Position: -5, SKU: "a.b-c"}
	got, err := catalog.DecodeCursor("after", c.Encode())
	require.NoError(t, err)
	require.Equal(t, c, *got)
	for _, bad := range []string{"", "nope", "ZzpYOnk", "ZzoxOg"} {
		_, err := catalog.DecodeCursor("after", bad)
		require.Error(t, err, bad)
	}
}

// TestAvailabilityOrder: the first applicable reason wins, in the order
// claims check them.
func TestAvailabilityOrder(t *testing.T) {
	t.Parallel()
	now := time.Now()
	sg := "SG"
	base := func() catalog.Gift {
		return catalog.Gift{CostPoints: 100, CodeSource: catalog.SourceNone}
	}
	rich := catalog.Viewer{Country: &sg, Balance: 1000}
	cases := []struct {
		name string
		gift func() catalog.Gift
		v    catalog.Viewer
		want apperr.Code
	}{
		{"claimable", base, rich, ""},
		{"retired beats all", func() catalog.Gift {
			g := base()
			g.RetiredAt, g.Countries, g.StockTotal = &now, []string{"MY"}, ptr(0)
			return g
		}, catalog.Viewer{Balance: 0}, apperr.CodeGiftUnavailable},
		{"window", func() catalog.Gift { g := base(); g.ClaimableUntil = ptr(now.Add(-time.Second)); return g }, rich, apperr.CodeGiftUnavailable},
		{"country before stock", func() catalog.Gift { g := base(); g.Countries, g.StockTotal = []string{"MY"}, ptr(0); return g }, rich, apperr.CodeNotInCountry},
		{"stock before codes", func() catalog.Gift {
			g := base()
			g.StockTotal, g.ClaimedCount, g.CodeSource = ptr(2), 2, catalog.SourcePool
			return g
		}, rich, apperr.CodeOutOfStock},
		{"codes before limit", func() catalog.Gift { g := base(); g.CodeSource, g.PerUserLimit = catalog.SourcePool, ptr(1); return g }, catalog.Viewer{Country: &sg, Balance: 1000, Claims: 1}, apperr.CodeCodesExhausted},
		{"limit before points", func() catalog.Gift { g := base(); g.PerUserLimit = ptr(1); return g }, catalog.Viewer{Balance: 0, Claims: 1}, apperr.CodeLimitReached},
		{"points", base, catalog.Viewer{Balance: 99}, apperr.CodeInsufficientPoints},
	}
	for _, c := range cases {
		g := c.gift()
		require.Equal(t, c.want, g.Availability(now, c.v), c.name)
	}
}
