// Package layering holds no code: its test enforces the import layers of
// the module (see docs/testing.md, "Layers"), so a transport import in a
// domain package, a domain import in the River wiring or a test helper
// linked into a binary fails `make test` instead of waiting for a review.
package layering
