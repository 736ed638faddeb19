#!/usr/bin/env bash
# make test-go: every Go test with the race detector against a real
# PostgreSQL (TEST_DATABASE_URL, or a private cluster started here).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${TEST_DATABASE_URL:-}" ]; then
  scripts/pgcluster.sh start "${TEST_PG_DATA:-.data/test-postgres}" "${TEST_PG_PORT:-54329}"
  TEST_DATABASE_URL="$(scripts/pgcluster.sh url "${TEST_PG_DATA:-.data/test-postgres}" "${TEST_PG_PORT:-54329}")"
  export TEST_DATABASE_URL
fi
exec go test -race -count=1 -timeout 15m ${GOTESTFLAGS:-} ./...
