package openapi_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/openapi"
)

// TestLint: Spectral (spectral:oas) and Redocly (recommended) report
// nothing at all, not even a warning or a hint, on the document as a
// deployment serves it (the error answers and headers derived from
// internal/apperr included).
func TestLint(t *testing.T) {
	t.Parallel()
	tools := openapiTools(t)
	dir := t.TempDir()
	doc := filepath.Join(dir, "openapi.json")
	require.NoError(t, os.WriteFile(doc, openapi.JSONFor("https://perks.example.test"), 0o600))

	t.Run("spectral", func(t *testing.T) {
		t.Parallel()
		out, err := run(t, tools, dir, "spectral", "lint", "--quiet", "--format", "json",
			"--fail-severity", "hint", "--ruleset", filepath.Join(tools, ".spectral.yaml"), doc)
		var problems []struct {
			Code     any    `json:"code"`
			Message  string `json:"message"`
			Path     []any  `json:"path"`
			Severity int    `json:"severity"`
		}
		require.NoError(t, json.Unmarshal(out, &problems), "spectral output: %s", truncate(string(out), 2000))
		for _, p := range problems {
			t.Errorf("spectral: %v %s at %v", p.Code, p.Message, p.Path)
		}
		require.NoError(t, err)
	})
	t.Run("redocly", func(t *testing.T) {
		t.Parallel()
		out, err := run(t, tools, dir, "redocly", "lint", "--format", "json",
			"--config", filepath.Join(tools, "redocly.yaml"), doc)
		var res struct {
			Totals   map[string]int `json:"totals"`
			Problems []struct {
				RuleID   string `json:"ruleId"`
				Message  string `json:"message"`
				Location []struct {
					Pointer string `json:"pointer"`
				} `json:"location"`
			} `json:"problems"`
		}
		require.NoError(t, json.Unmarshal(out, &res), "redocly output: %s", truncate(string(out), 2000))
		for _, p := range res.Problems {
			where := ""
			if len(p.Location) > 0 {
				where = p.Location[0].Pointer
			}
			t.Errorf("redocly: %s %s at %s", p.RuleID, p.Message, where)
		}
		require.NoError(t, err)
		require.Zero(t, res.Totals["errors"]+res.Totals["warnings"])
	})
}
