# Every command CI runs is a target here, and CI runs the targets (see
# .ci/run). Postgres is found by devenv (DATABASE_URL / TEST_DATABASE_URL,
# else 127.0.0.1:5432, else an embedded Postgres); Redis is expected on
# 127.0.0.1:6379 (or TEST_REDIS_URL, else a redis-server devenv starts) for
# the tests that use it.

GO      ?= go
BIN     := bin/server
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
DEVENV  := cd devenv && $(GO) run .

.PHONY: all build run test lint bench fuzz conformance deploy-check compose-secrets clean

all: lint test

## build: the server binary in bin/
build:
	$(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o $(BIN) ./cmd/server

## run: development server with a migrated, seeded database and a demo key
run: build
	$(DEVENV) run ../$(BIN)

## test: the whole suite against real Postgres and Redis (what CI runs)
test: lint
	$(DEVENV) exec -- $(GO) -C .. test -race -count=1 -timeout 20m ./...
	cd devenv && $(GO) test -count=1 ./...
	cd deploy && $(GO) test -count=1 ./...

## lint: formatting, vet and staticcheck
lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...
	cd devenv && $(GO) vet ./...
	cd deploy && $(GO) vet ./...

## bench: speed and memory targets (see README, "Performance")
bench:
	$(DEVENV) exec -- $(GO) -C .. test -run '^$$' -bench . -benchmem -count=1 ./...

## fuzz: fuzz the untrusted-text sanitizer for a while (FUZZTIME=5m)
FUZZTIME ?= 60s
fuzz:
	$(GO) test ./internal/sanitize -run '^$$' -fuzz FuzzUntrustedText -fuzztime $(FUZZTIME)

## conformance: the official MCP conformance suite's DNS-rebinding scenario (needs Node.js)
conformance: build
	$(DEVENV) conformance ../$(BIN)

## deploy-check: static checks of Dockerfile and compose.yaml
deploy-check:
	cd deploy && $(GO) test -count=1 ./...

clean:
	rm -rf bin

## compose-secrets: random local secrets for docker compose, in .secrets/
compose-secrets:
	@mkdir -p .secrets && chmod 700 .secrets
	@test -f .secrets/db_password || head -c 24 /dev/urandom | base64 | tr -d '/+=' > .secrets/db_password
	@test -f .secrets/redis_password || head -c 24 /dev/urandom | base64 | tr -d '/+=' > .secrets/redis_password
	@test -f .secrets/audit_hmac_key || head -c 48 /dev/urandom | base64 > .secrets/audit_hmac_key
	@printf 'postgres://postgres:%s@db:5432/orders?sslmode=disable' "$$(cat .secrets/db_password)" > .secrets/database_url
	@printf 'redis://:%s@redis:6379/0' "$$(cat .secrets/redis_password)" > .secrets/redis_url
	@chmod 644 .secrets/*  # readable by the containers' non-root users; the directory stays 700
	@echo "secrets written to .secrets/ (git-ignored)"
