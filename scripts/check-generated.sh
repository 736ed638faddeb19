#!/usr/bin/env bash
# Fails when `make generate` changes any file: generated code must be
# regenerated and committed together with its source.
set -euo pipefail
cd "$(dirname "$0")/.."
snapshot() {
  { git ls-files -co --exclude-standard -- graph migrations docs/errors.md; } | sort -u | while read -r f; do
    [ -f "$f" ] && sha256sum "$f"
  done
}
before="$(snapshot)"
go generate ./...
after="$(snapshot)"
if [ "$before" != "$after" ]; then
  echo "generated code was stale; 'make generate' rewrote:" >&2
  diff <(echo "$before") <(echo "$after") | grep '^[<>]' | awk '{print "  " $3}' | sort -u >&2
  echo "review and commit the regenerated files" >&2
  exit 1
fi
echo "generated code is current"
