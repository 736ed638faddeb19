package partner_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/partner"
)

// TestValidateCORSOrigin: origins are stored exactly as browsers send
// them; anything that is not one exact origin is refused.
func TestValidateCORSOrigin(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"https://app.example.com":      "https://app.example.com",
		" HTTPS://App.Example.com/ ":   "https://app.example.com",
		"https://app.example.com:443":  "https://app.example.com",
		"https://app.example.com:8443": "https://app.example.com:8443",
		"http://localhost:3000":        "http://localhost:3000",
		"http://127.0.0.1:5173":        "http://127.0.0.1:5173",
		"http://[::1]:8080":            "http://[::1]:8080",
		"https://203.0.113.7":          "https://203.0.113.7",
	} {
		got, err := partner.ValidateCORSOrigin(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, bad := range []string{
		"*", "https://*.example.com", "null", "app.example.com", "http://app.example.com",
		"https://app.example.com/path", "https://app.example.com?x=1", "https://user@app.example.com",
		"https://app.example.com:99999", "ftp://app.example.com", "https://a.example.com, https://b.example.com",
		"https://" + strings.Repeat("a", 300) + ".com", "javascript:alert(1)",
	} {
		_, err := partner.ValidateCORSOrigin(bad)
		require.Error(t, err, bad)
		require.Contains(t, err.Error(), "corsOrigins", bad)
	}
	list, err := partner.ValidateCORSOrigins([]string{"https://a.example.com", " ", "https://A.example.com/"})
	require.NoError(t, err)
	require.Equal(t, []string{"https://a.example.com"}, list)
	many := make([]string, partner.MaxCORSOrigins+1)
	for i := range many {
		many[i] = "https://a" + strings.Repeat("b", i) + ".example.com"
	}
	_, err = partner.ValidateCORSOrigins(many)
	require.Error(t, err)
}
