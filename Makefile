# Perks developer commands. `make run` and `make test` are the two that matter;
# both start their own PostgreSQL under .data/ when none is given.

SHELL := /bin/bash
GO ?= go
PG_DATA ?= .data/postgres
PG_PORT ?= 54320
TEST_PG_DATA ?= .data/test-postgres
TEST_PG_PORT ?= 54329

.PHONY: all build run db-start db-stop test test-go test-scale bench-scale fmt-check vet staticcheck generate check-generated schema-check bench clean

all: build

# VERSION is what `perks --version` prints: the git description of this
# checkout, or "devel" outside one.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o bin/perks ./cmd/perks

## run: build, start PostgreSQL if DATABASE_URL is unset, migrate, seed, serve on :4000
run: build
	@PG_DATA=$(PG_DATA) PG_PORT=$(PG_PORT) scripts/run.sh

## db-start / db-stop: the private development cluster
db-start:
	@scripts/pgcluster.sh start $(PG_DATA) $(PG_PORT)
db-stop:
	@scripts/pgcluster.sh stop $(PG_DATA)
	@scripts/pgcluster.sh stop $(TEST_PG_DATA)

## test: generated code is current, gofmt, vet, staticcheck, the GraphQL schema check, then every test with -race
test: check-generated fmt-check vet staticcheck schema-check test-go

test-go:
	@TEST_PG_DATA=$(TEST_PG_DATA) TEST_PG_PORT=$(TEST_PG_PORT) scripts/test.sh

## test-scale: three replicas behind one address, a streaming standby, PgBouncer (docs/scaling.md); own clusters, about two minutes
test-scale:
	PERKS_SCALE_TEST=1 $(GO) test -count=1 -timeout 15m -v ./internal/scale/

## bench-scale: requests per second through 1 and 3 replicas, reads on the primary and the standby (docs/scaling.md)
bench-scale:
	PERKS_SCALE_TEST=1 PERKS_SCALE_MEASURE=1 $(GO) test -count=1 -timeout 15m -v -run TestMeasureReplicas ./internal/scale/

## fmt-check: every tracked Go file is gofmt-formatted
fmt-check:
	@files="$$(git ls-files '*.go' | xargs gofmt -l)"; if [ -n "$$files" ]; then echo "gofmt would change:"; echo "$$files"; exit 1; fi

vet:
	$(GO) vet ./...

staticcheck:
	$(GO) tool staticcheck ./...

## generate: gqlgen code and River's schema migration
generate:
	$(GO) generate ./...

## schema-check: graphql-inspector: no undeclared breaking change against graph/schema.released.graphqls
schema-check:
	@scripts/schema-check.sh

## check-generated: fail when `make generate` changes anything
check-generated:
	@scripts/check-generated.sh

## bench: the benchmark harness (starts its own server and database)
bench:
	$(GO) run ./cmd/bench

clean:
	rm -rf bin
