#!/usr/bin/env bash
# make run: start the private PostgreSQL when DATABASE_URL is unset, then
# migrate, seed and serve.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${DATABASE_URL:-}" ]; then
  scripts/pgcluster.sh start "${PG_DATA:-.data/postgres}" "${PG_PORT:-54320}"
  DATABASE_URL="$(scripts/pgcluster.sh url "${PG_DATA:-.data/postgres}" "${PG_PORT:-54320}")"
  export DATABASE_URL
fi
./bin/perks migrate
./bin/perks seed
echo
echo "Perks is starting on ${PERKS_ADDR:-:4000} (GraphiQL: http://localhost:4000/graphql). Ctrl-C stops it; 'make db-stop' stops PostgreSQL."
exec ./bin/perks serve
