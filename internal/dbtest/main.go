package dbtest

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// Main runs a package's tests and then fails them when a goroutine
// outlived them: a River client, an HTTP server, a pool or a delivery that
// was never stopped. Use it as the package's TestMain:
//
//	func TestMain(m *testing.M) { dbtest.Main(m) }
//
// The per-process database behind Tx lives until every test has run, so
// Main closes it before looking; everything else must be stopped by the
// test (or its t.Cleanup) that started it.
func Main(m *testing.M) {
	code := m.Run()
	if sharedDB != nil {
		sharedDB.Close()
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: goroutines outlived the tests: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}
