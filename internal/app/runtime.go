package app

import (
	"runtime/debug"

	"github.com/perkshq/perks/internal/config"
)

// TuneRuntime sets the Go garbage collector's target to PERKS_GC_PERCENT
// for a serving process, unless the environment already tells the Go
// runtime what to do (GOGC, or GOMEMLIMIT, with which a raised target could
// push the heap into the limit and make the collector run harder than
// before). It reports the target it set, 0 for none. A request of Perks
// allocates far more than it keeps: at Go's default the collector ran for
// about a quarter of a catalog page's CPU (docs/benchmarks.md, "Issue 18,
// session 7: the integrator's quiet run").
//
// It changes the whole process: call it from a main (perks serve, the
// bench that measures it), not from a library.
func TuneRuntime(cfg *config.Config, getenv func(string) string) int {
	if cfg.GCPercent == 0 || getenv("GOGC") != "" || getenv("GOMEMLIMIT") != "" {
		return 0
	}
	debug.SetGCPercent(cfg.GCPercent)
	return cfg.GCPercent
}
