# syntax=docker/dockerfile:1

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

# Runtime stage: distroless, no shell, no package manager, a non-root user.
# Secrets never live in the image: pass them at run time as environment
# variables or, better, as files (X_FILE=/run/secrets/x).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/server /server
USER nonroot:nonroot
# The server listens on 127.0.0.1:8080 by default, unreachable from outside
# the container. To publish it set MCP_HTTP_ADDR=0.0.0.0:8080, TLS (or
# MCP_TLS_TERMINATED_BY_PROXY=true) and MCP_RESOURCE_URL, as production
# requires, or MCP_ENV=development as compose.yaml does.
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD ["/server", "healthcheck"]
ENTRYPOINT ["/server"]
CMD ["serve"]
