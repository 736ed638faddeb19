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
if [ -z "${CHROME_PATH:-}" ] && ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1 && ! command -v google-chrome >/dev/null 2>&1; then
  echo "test.sh: Chromium not found: the browser tests (./web) will fail; install it with: apt-get install -y chromium (scripts/install-deps.sh does it)" >&2
fi
exec go test -race -count=1 -timeout 15m ${GOTESTFLAGS:-} ./...
