// Command errdoc writes docs/errors.md from the error catalog.
package main

import (
	"fmt"
	"os"

	"github.com/perkshq/perks/internal/apperr"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: errdoc <path>")
		os.Exit(2)
	}
	if err := os.WriteFile(os.Args[1], []byte(apperr.Markdown()), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "errdoc:", err)
		os.Exit(1)
	}
}
