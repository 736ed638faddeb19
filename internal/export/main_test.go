package export_test

import (
	"testing"

	"github.com/perkshq/perks/internal/dbtest"
)

// TestMain fails the package's tests when a goroutine outlives them (an
// HTTP server, a pool or a client never stopped).
func TestMain(m *testing.M) { dbtest.Main(m) }
