package main

import (
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v3"
)

// TestEveryListingCommandHasJSON: every command that lists things (list,
// status, deliveries) takes --json, so scripts never parse a table.
func TestEveryListingCommandHasJSON(t *testing.T) {
	t.Parallel()
	listing := map[string]bool{"list": true, "status": true, "deliveries": true, "watch": true}
	var found []string
	var walk func(prefix string, c *cli.Command)
	walk = func(prefix string, c *cli.Command) {
		name := prefix + c.Name
		if listing[c.Name] {
			found = append(found, name)
			has := false
			for _, f := range c.Flags {
				for _, n := range f.Names() {
					has = has || n == "json"
				}
			}
			require.True(t, has, "`%s` has no --json", name)
		}
		for _, sub := range c.Commands {
			walk(name+" ", sub)
		}
	}
	walk("", newApp(runner{}))
	require.ElementsMatch(t, []string{
		"perks migrate status", "perks partner list", "perks partner credential list", "perks key list",
		"perks webhook list", "perks webhook deliveries", "perks merchant list", "perks jobs list", "perks jobs watch",
	}, found)
}
