package campaign_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/campaign"
)

func ptr[T any](v T) *T { return &v }

// TestCompileRefuses: every bad condition is refused at save time with a
// stable code on the condition field, and with the position for errors in
// the text.
func TestCompileRefuses(t *testing.T) {
	t.Parallel()
	big := "[" + strings.Repeat("1,", 199) + "1]"
	tests := []struct {
		name, src string
		code      apperr.Code
		detail    string // a part of the message
	}{
		{"syntax error", "user.tier == 'gold' &&", apperr.CodeInvalidCondition, "line 1, column 23"},
		{"unknown variable", "usr.tier == 'gold'", apperr.CodeInvalidCondition, "line 1, column 1: undeclared reference to 'usr'"},
		{"unknown field on the second line", "user.tier == 'gold' &&\n  earn.amout > 10", apperr.CodeInvalidCondition, "line 2, column 7: earn has no field \"amout\""},
		{"not a bool", "earn.points + 1", apperr.CodeInvalidCondition, "must return a bool"},
		{"dyn is not a bool", "earn.amount", apperr.CodeInvalidCondition, "must return a bool"},
		{"wrong operand types", "'a' + 1 == 'a1'", apperr.CodeInvalidCondition, "line 1, column 5"},
		{"too long", "true || " + strings.Repeat("true || ", 300) + "true", apperr.CodeInvalidCondition, "at most"},
		{"too deep", strings.Repeat("(", 60) + "true" + strings.Repeat(")", 60), apperr.CodeInvalidCondition, "line 1"},
		{"nested exists over big lists", big + ".exists(x, " + big + ".exists(y, " + big + ".exists(z, x + y + z == 0)))", apperr.CodeConditionTooCostly, "above the limit"},
		{"huge comprehension over metadata", "earn.metadata.items.all(x, earn.metadata.items.all(y, x == y))", apperr.CodeConditionTooCostly, "above the limit"},
		{"map over map over attributes", "size(user.attributes.tags.map(x, user.attributes.tags.map(y, x + y))) > 0", apperr.CodeConditionTooCostly, "above the limit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := campaign.Compile(tc.src, campaign.Limits{})
			e := apperr.As(err)
			require.NotNil(t, e, "%v", err)
			require.Equal(t, tc.code, e.Code, "%s", e.Message)
			require.Equal(t, "condition", e.Field)
			require.Contains(t, e.Message, tc.detail)
		})
	}
}

// TestConditions is the table of what conditions see: the earn (amount
// absent or present, action, metadata), the user (country, tier,
// attributes) and now.
func TestConditions(t *testing.T) {
	t.Parallel()
	sat := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC) // a Saturday
	mon := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	gold := &campaign.UserFacts{Country: "SG", Tier: "gold", Attributes: map[string]any{"segment": "vip", "visits": int64(12), "newsletter": true, "score": 4.5}}
	meta, err := campaign.DecodeObject([]byte(`{"channel":"app","qty":3,"items":["a","b"],"price":9.5}`))
	require.NoError(t, err)
	earn := campaign.Facts{Action: "purchase", BasePoints: 100, Amount: ptr(int64(12_500)), Metadata: meta}
	noAmount := campaign.Facts{Action: "purchase", BasePoints: 100}

	tests := []struct {
		name string
		src  string
		f    campaign.Facts
		u    *campaign.UserFacts
		at   time.Time
		want bool
		err  bool
	}{
		{"gold in SG", "user.tier == 'gold' && user.country == 'SG'", earn, gold, sat, true, false},
		{"not in FR", "user.country == 'FR'", earn, gold, sat, false, false},
		{"amount over 100.00", "has(earn.amount) && earn.amount >= 10000", earn, gold, sat, true, false},
		{"amount absent: has is false", "has(earn.amount) && earn.amount >= 10000", noAmount, gold, sat, false, false},
		{"amount absent read without has: error, not applied", "earn.amount >= 10000", noAmount, gold, sat, false, true},
		{"action", "earn.action in ['purchase', 'refill']", earn, gold, sat, true, false},
		{"base points", "earn.points >= 100", earn, gold, sat, true, false},
		{"metadata string", "earn.metadata.channel == 'app'", earn, gold, sat, true, false},
		{"metadata whole number is an int", "earn.metadata.qty == 3", earn, gold, sat, true, false},
		{"metadata double vs int", "earn.metadata.price > 9", earn, gold, sat, true, false},
		{"metadata list", "'b' in earn.metadata.items", earn, gold, sat, true, false},
		{"metadata absent key with has", "has(earn.metadata.coupon)", earn, gold, sat, false, false},
		{"attribute string", "user.attributes.segment == 'vip'", earn, gold, sat, true, false},
		{"attribute int", "user.attributes.visits > 10", earn, gold, sat, true, false},
		{"attribute bool", "user.attributes.newsletter == true", earn, gold, sat, true, false},
		{"attribute double", "user.attributes.score >= 4.5", earn, gold, sat, true, false},
		{"no attributes", "has(user.attributes.segment)", earn, nil, sat, false, false},
		{"weekend in Singapore", "now.getDayOfWeek('Asia/Singapore') in [0, 6]", earn, gold, sat, true, false},
		{"not the weekend", "now.getDayOfWeek('Asia/Singapore') in [0, 6]", earn, gold, mon, false, false},
		{"before a date", "now < timestamp('2026-12-06T00:00:00Z')", earn, gold, sat, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := campaign.Compile(tc.src, campaign.Limits{})
			require.NoError(t, err)
			got, err := c.Eval(campaign.Vars(tc.f, tc.u, tc.at))
			require.Equal(t, tc.err, err != nil, "%v", err)
			require.Equal(t, tc.want, got)
		})
	}
}

// TestRuntimeCostLimit: an expression whose actual cost is above the
// runtime limit is stopped (the estimate let it through because the
// limits differ here, as they may when an estimate is loose).
func TestRuntimeCostLimit(t *testing.T) {
	t.Parallel()
	src := "earn.metadata.items.all(x, earn.metadata.items.exists(y, x == y + 'z'))"
	c, err := campaign.Compile(src, campaign.Limits{MaxEstimatedCost: 1 << 40, RuntimeCost: 1000})
	require.NoError(t, err)
	items := make([]any, 200)
	for i := range items {
		items[i] = "v"
	}
	start := time.Now()
	ok, err := c.Eval(campaign.Vars(campaign.Facts{Metadata: map[string]any{"items": items}}, nil, time.Now()))
	require.Error(t, err)
	require.Contains(t, err.Error(), "runtime cost limit")
	require.False(t, ok)
	require.Less(t, time.Since(start), time.Second)

	// The same condition on small data runs to the end.
	ok, err = c.Eval(campaign.Vars(campaign.Facts{Metadata: map[string]any{"items": []any{"a"}}}, nil, time.Now()))
	require.NoError(t, err)
	require.False(t, ok)
}

func TestParseMultiplier(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]struct {
		n   int
		out string
	}{"2": {200, "2"}, "1.5": {150, "1.5"}, "1.25": {125, "1.25"}, "1.50": {150, "1.5"}, "100": {10000, "100"}, "1.01": {101, "1.01"}, "3.000": {300, "3"}} {
		got, err := campaign.ParseMultiplier("multiplier", in)
		require.NoError(t, err, in)
		require.Equal(t, want.n, got, in)
		require.Equal(t, want.out, campaign.FormatHundredths(got), in)
	}
	for _, in := range []string{"1", "1.00", "0.5", "1.005", "100.01", "-2", "2e0", "abc", "", "1000"} {
		_, err := campaign.ParseMultiplier("multiplier", in)
		require.Error(t, err, in)
		require.Equal(t, apperr.CodeInvalidField, apperr.CodeOf(err), in)
	}
}
