// Package migrations embeds the SQL migrations of Perks, River's included,
// and exposes them as a bun migration set.
//
// Files are named <timestamp>_<name>.up.sql / .down.sql; statements in one
// file are separated by `--bun:split`. Files ending in .tx.up.sql run in a
// transaction.
package migrations

import (
	"embed"
	"io/fs"

	"github.com/uptrace/bun/migrate"
)

//go:generate go run ./internal/rivergen

//go:embed *.sql
var files embed.FS

// Set is every migration, in order.
var Set = migrate.NewMigrations()

func init() {
	if err := Set.Discover(files); err != nil {
		panic(err)
	}
}

// Files returns the embedded SQL files (used to fingerprint test templates).
func Files() fs.FS { return files }
