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
echo
echo "Webview of acme's demo user (seed 000 step 4; the token is valid 24 hours):"
echo "  $(./bin/perks token mint --partner acme --sub usr_demo_001 --email demo@acme.example.test --display-name 'Demo User' --ttl 24h --webview)"
echo "  (any token works: ${PERKS_PUBLIC_BASE_URL:-http://localhost:4000}/consumer#token=\$JWT)"
echo "Partner portal: ${PERKS_PUBLIC_BASE_URL:-http://localhost:4000}/portal (docs/portal.md). acme's owner activates with:"
./bin/perks portal invite --partner acme --email owner@acme.example.test --name 'Acme Owner' 2>/dev/null | sed 's/^/  /' \
  || echo "  (owner@acme.example.test is already active: sign in at ${PERKS_PUBLIC_BASE_URL:-http://localhost:4000}/portal)"
echo "Merchant portal and till: ${PERKS_PUBLIC_BASE_URL:-http://localhost:4000}/merchant (docs/merchant.md). The acme-store admin activates with:"
./bin/perks merchant invite --partner acme --code acme-store --email admin@acme-store.example.test --name 'Store Admin' 2>/dev/null | sed 's/^/  /' \
  || echo "  (admin@acme-store.example.test is already active: sign in at ${PERKS_PUBLIC_BASE_URL:-http://localhost:4000}/merchant)"
echo "Platform console: ${PERKS_PUBLIC_BASE_URL:-http://localhost:4000}/admin (docs/admin.md); create its first admin with"
echo "  ./bin/perks admin create --email you@example.com"
echo
exec ./bin/perks serve
