package partner

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestValidateFrameAncestors(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"'self'":                         "'self'",
		"self":                           "'self'",
		"https:":                         "https:",
		"https://App.Acme.example":       "https://app.acme.example",
		"https://*.acme.example":         "https://*.acme.example",
		"https://acme.example:8443":      "https://acme.example:8443",
		"http://localhost:3000":          "http://localhost:3000",
		"acme.example":                   "acme.example",
		" https://partner.example.test ": "https://partner.example.test",
	} {
		got, err := ValidateFrameAncestor(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, bad := range []string{
		"", "*", "'none'", "'unsafe-inline'", "https://a.example/path", "https://a.example;script-src *",
		"https://a.example, https://b.example", "https://a example", "javascript:", "data:", "https://*", "ftp://a.example",
		"https://a.example:99999", "https://user@a.example", `"https://a.example"`,
	} {
		_, err := ValidateFrameAncestor(bad)
		require.Error(t, err, bad)
	}

	out, err := ValidateFrameAncestors([]string{"'self'", "https://a.example", "", "'SELF'", "https://A.example"})
	require.NoError(t, err)
	require.Equal(t, []string{"'self'", "https://a.example"}, out, "canonical, without duplicates")
	out, err = ValidateFrameAncestors([]string{"'none'"})
	require.NoError(t, err)
	require.Empty(t, out, "'none' alone is the empty list")
	_, err = ValidateFrameAncestors([]string{"'none'", "'self'"})
	require.Error(t, err)
	many := make([]string, MaxFrameAncestors+1)
	for i := range many {
		many[i] = "https://a" + string(rune('a'+i)) + ".example"
	}
	_, err = ValidateFrameAncestors(many)
	require.ErrorContains(t, err, "at most 20")
}
