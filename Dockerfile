# syntax=docker/dockerfile:1
#
# Every image reference here (the syntax line above included: it names the
# BuildKit frontend image that parses this file) is pinned to a digest by
# `make pin-images` where Docker can reach the registries; until then it is
# listed in deploy/images-unpinned.txt with the reason.

# Build stage: a static binary, no cgo, reproducible paths.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY cmd ./cmd
COPY internal ./internal
COPY migrations ./migrations
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/server ./cmd/server
# The runtime image has no shell to mkdir or chown with, so the one
# writable directory it needs is made here, empty, and copied over with its
# owner below.
RUN mkdir -p /out/state

# Runtime stage: distroless, no shell, no package manager, a non-root user.
# Secrets never live in the image: pass them at run time as environment
# variables or, better, as files (X_FILE=/run/secrets/x).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/server /server
# /var/lib/order-mcp is the only place the server writes. The audit trail
# spills there when Postgres cannot take records, and replays them when it
# recovers. The root filesystem is read-only in compose and Kubernetes, so
# the directory is a volume: compose mounts a named volume (which Docker
# fills from this directory, owner and mode included, the first time), and
# Kubernetes an emptyDir owned by the pod's fsGroup 65532; a container
# that mounts nothing there (compose's one-shots) gets an anonymous volume.
# The server creates audit-spill/ inside it.
COPY --from=build --chown=65532:65532 /out/state /var/lib/order-mcp
ENV AUDIT_SPILL_DIR=/var/lib/order-mcp/audit-spill
VOLUME /var/lib/order-mcp
# nonroot is uid/gid 65532 in distroless. Numeric, so that Kubernetes'
# runAsNonRoot can check it without reading /etc/passwd.
USER 65532:65532
# The server listens on 127.0.0.1:8080 by default, unreachable from outside
# the container. To publish it set MCP_HTTP_ADDR=0.0.0.0:8080, TLS (or
# MCP_TLS_TERMINATED_BY_PROXY=true) and MCP_RESOURCE_URL, as production
# requires, or MCP_ENV=development as compose.yaml does. 9464 is where
# MCP_METRICS_ADDR=0.0.0.0:9464 serves Prometheus metrics, apart from /mcp.
EXPOSE 8080 9464
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD ["/server", "healthcheck"]
ENTRYPOINT ["/server"]
CMD ["serve"]
