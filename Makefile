# Every command CI runs is a target here, and CI runs the targets (see
# .ci/run). Postgres is found by devenv (DATABASE_URL / TEST_DATABASE_URL,
# else 127.0.0.1:5432, else an embedded Postgres); Redis is expected on
# 127.0.0.1:6379 (or TEST_REDIS_URL, else a redis-server devenv starts) for
# the tests that use it.

GO      ?= go
BIN     := bin/server
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
DEVENV  := cd devenv && $(GO) run .

.PHONY: all build run test lint bench bench-smoke bench-micro fuzz fuzz-smoke interop conformance deploy-check compose-secrets pin-images clean

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

## bench: the A/B benchmark, every control on against a bare go-sdk server
## (bench/cmd/runner; e.g. BENCHFLAGS='-duration 20s -runs 5')
bench: build
	cd bench && $(GO) run ./cmd/runner -server ../$(BIN) $(BENCHFLAGS)

## bench-smoke: one short A/B run and the revocation check; validity, never timing (CI)
bench-smoke: build
	cd bench && $(GO) run ./cmd/runner -server ../$(BIN) -smoke $(BENCHFLAGS)

## bench-micro: the Go micro-benchmarks with their targets (see docs/PERFORMANCE.md)
bench-micro:
	$(DEVENV) exec -- $(GO) -C .. test -run '^$$' -bench . -benchmem -count=1 ./...

## fuzz: run every fuzz target for FUZZTIME each (default 60s; e.g. FUZZTIME=5m), one
## after another; their seed corpora (testdata/fuzz) run with every go test anyway
FUZZTIME ?= 60s
# package:FuzzName pairs; go test fuzzes one target per invocation. Each
# target's property is in its doc comment.
FUZZ_TARGETS := \
	./internal/tools:FuzzToolArgs \
	./internal/httpserver:FuzzPrecheckAgreesWithSDK \
	./internal/auth:FuzzAPIKeyParse \
	./internal/auth:FuzzJWTHeader \
	./internal/logging:FuzzRedactionProperty \
	./internal/sanitize:FuzzUntrustedText
fuzz:
	@set -e; for target in $(FUZZ_TARGETS); do \
		pkg=$${target%%:*}; name=$${target##*:}; \
		echo "== $$name in $$pkg for $(FUZZTIME)"; \
		($(DEVENV) exec -- $(GO) -C .. test $$pkg -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME)); \
	done

## fuzz-smoke: every fuzz target for 5s (CI)
fuzz-smoke:
	$(MAKE) fuzz FUZZTIME=5s

## interop: the real server driven by the official TypeScript SDKs v1 and v2,
## mcp-remote, the MCP Inspector and the official conformance suite (needs
## Node.js >= 20 and npm; npm installs the rest from interop/'s lockfiles)
interop: build
	$(DEVENV) interop ../$(BIN)

## conformance: only the official MCP conformance suite's part of interop
conformance: build
	$(DEVENV) interop -only conformance ../$(BIN)

## deploy-check: the Dockerfile, compose.yaml, the Caddy and Kubernetes configuration, checked
## without a Docker engine; then compose.yaml replayed against the local Postgres and Redis
deploy-check:
	cd deploy && $(GO) test -count=1 ./...

## pin-images: rewrite every image reference (compose, Dockerfile, Kubernetes) as name:tag@sha256:...
## Needs Docker with buildx (or crane) and registry access; digests are only ever written as resolved.
pin-images:
	cd deploy && $(GO) run ./cmd/pin-images -root ..

## docs: regenerate what is generated from code: docs/CONFIGURATION.md (config.Vars),
## the README's tool table (tools.All) and docs/ERRORS.md's catalogue (internal/refusal);
## tests fail when any of them drifts
.PHONY: docs
docs:
	$(GO) run ./cmd/gendocs -root .

clean:
	rm -rf bin

## compose-secrets: random local secrets for docker compose, in .secrets/
# Existing passwords are kept; the URLs are rewritten from them each time.
# The login role's name must match DB_LOGIN_ROLE in compose.yaml (a test
# in deploy/ runs this target and checks).
COMPOSE_LOGIN_ROLE := order_mcp_login
compose-secrets:
	@mkdir -p .secrets && chmod 700 .secrets
	@test -f .secrets/db_password || head -c 24 /dev/urandom | base64 | tr -d '/+=' > .secrets/db_password
	@test -f .secrets/db_login_password || head -c 24 /dev/urandom | base64 | tr -d '/+=' > .secrets/db_login_password
	@test -f .secrets/redis_password || head -c 24 /dev/urandom | base64 | tr -d '/+=' > .secrets/redis_password
	@test -f .secrets/audit_hmac_key || head -c 48 /dev/urandom | base64 > .secrets/audit_hmac_key
	@# The schema owner (migrate, seed, keys) and the login role the server connects as.
	@printf 'postgres://postgres:%s@db:5432/orders?sslmode=disable' "$$(cat .secrets/db_password)" > .secrets/database_url
	@printf 'postgres://$(COMPOSE_LOGIN_ROLE):%s@db:5432/orders?sslmode=disable' "$$(cat .secrets/db_login_password)" > .secrets/app_database_url
	@printf 'redis://:%s@redis:6379/0' "$$(cat .secrets/redis_password)" > .secrets/redis_url
	@chmod 644 .secrets/*  # readable by the containers' non-root users; the directory stays 700
	@echo "secrets written to .secrets/ (git-ignored)"
