package webhook_test

import (
	"testing"

	"github.com/perkshq/perks/internal/dbtest"
)

// TestMain fails the package's tests when a goroutine outlives them (a
// River client, an HTTP server or a delivery never stopped).
func TestMain(m *testing.M) { dbtest.Main(m) }
