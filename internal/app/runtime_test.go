package app_test

import (
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/app"
	"github.com/perkshq/perks/internal/config"
)

// TestTuneRuntime: PERKS_GC_PERCENT becomes the collector's target unless
// GOGC or GOMEMLIMIT is in the environment, or it is 0.
func TestTuneRuntime(t *testing.T) {
	// Not parallel: the target is the process's.
	prev := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(prev) })
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	for _, c := range []struct {
		name    string
		percent int
		getenv  func(string) string
		want    int
	}{
		{"set", 400, env(), 400},
		{"GOGC wins", 400, env("GOGC", "150"), 0},
		{"GOMEMLIMIT wins", 400, env("GOMEMLIMIT", "1GiB"), 0},
		{"0 leaves Go's default", 0, env(), 0},
	} {
		debug.SetGCPercent(100)
		require.Equal(t, c.want, app.TuneRuntime(&config.Config{GCPercent: c.percent}, c.getenv), c.name)
		got := debug.SetGCPercent(100)
		if c.want == 0 {
			require.Equal(t, 100, got, "%s: the target is untouched", c.name)
		} else {
			require.Equal(t, c.want, got, c.name)
		}
	}
}
