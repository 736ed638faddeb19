//go:build race

package guides_test

func init() { raceEnabled = true }
