#!/usr/bin/env bash
# The GraphQL schema check of `make test`: graphql-inspector compares
# schema.graphqls with graph/schema.released.graphqls (the schema as last
# released) and fails on any breaking change not declared in
# graph/schema.breaking.txt. Skips, saying so, only when node is absent;
# fails when node is there but the pinned tools are not installed.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v node >/dev/null 2>&1; then
  echo "schema-check: SKIPPED: node is not installed, so the GraphQL schema was NOT checked for breaking changes (install node and run scripts/install-deps.sh)" >&2
  exit 0
fi
if [ ! -d tools/graphql/node_modules/@graphql-inspector/core ]; then
  echo "schema-check: FAILED: tools/graphql is not installed; run scripts/install-deps.sh (npm ci --prefix tools/graphql)" >&2
  exit 1
fi
exec node tools/graphql/check.mjs graph/schema.released.graphqls schema.graphqls graph/schema.breaking.txt
