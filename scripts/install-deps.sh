#!/usr/bin/env bash
# Installs the Debian packages the project needs when they are missing:
# the PostgreSQL server binaries (initdb/pg_ctl) for the private clusters,
# openssl and xxd for the test that runs seed 000's signing pipeline, and
# Chromium for the browser tests of the webview and the merchant page, and
# Node.js with the pinned OpenAPI tools of tools/openapi (Spectral, Redocly,
# openapi-typescript, openapi-fetch, TypeScript) that internal/openapi's
# tests run, and the npm packages of the guides run by internal/guides.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
have_pg() {
  command -v initdb >/dev/null 2>&1 && return 0
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1
}
have_pg || need+=(postgresql)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v xxd >/dev/null 2>&1 || need+=(xxd)
# PgBouncer for the scale-out test behind a transaction pooler (make test-scale).
command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ] || need+=(pgbouncer)
# curl and jq for the guides that internal/guides runs as written.
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v jq >/dev/null 2>&1 || need+=(jq)
# Headless Chromium for the webview and merchant-page browser tests.
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# Node.js and npm for the OpenAPI lint and generated-client tests and the
# GraphQL schema check (graphql-inspector, tools/graphql).
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing packages: ${need[*]}; install them with: sudo apt-get install -y ${need[*]}" >&2
    exit 1
  fi
  echo "installing: ${need[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
# The OpenAPI tools, exactly as package-lock.json pins them; skipped when
# the installed tree already matches the lock file.
if ! cmp -s tools/openapi/package-lock.json tools/openapi/node_modules/.package-lock.json.src 2>/dev/null; then
  (cd tools/openapi && npm ci --no-audit --no-fund --loglevel=error && cp package-lock.json node_modules/.package-lock.json.src)
fi
# The pinned npm tools of the GraphQL schema check (scripts/schema-check.sh).
if [ ! -d tools/graphql/node_modules/@graphql-inspector/core ]; then
  npm ci --prefix tools/graphql --no-audit --no-fund --loglevel=error >&2
fi
# The pinned npm packages of the guides that internal/guides' tests run as
# written (Apollo Client, standardwebhooks, jose: docs/quickstart, docs/migrate).
if ! cmp -s tools/guides/package-lock.json tools/guides/node_modules/.package-lock.json.src 2>/dev/null; then
  (cd tools/guides && npm ci --no-audit --no-fund --loglevel=error && cp package-lock.json node_modules/.package-lock.json.src)
fi
